"""Fully connected towers: flattened pixels through dense layers (linear siamese, FconnNet)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pairzoo.towers.base import TowerFamily


@dataclass
class MLPTower:
    """Flattened pixels through dense layers: [dense -> [batch norm] -> ReLU -> [dropout]]*."""

    kind: str = "mlp"
    dense_units: list[int] = field(default_factory=lambda: [128])
    batchnorm: bool = False
    dropout: float = 0.0


def build_mlp_tower(config: MLPTower, input_shape, output_units: int | None, name: str):
    import keras
    from keras import layers

    from pairzoo.towers.blocks import apply_dense_stack

    image = keras.Input(input_shape, name=f"{name}_image")
    x = layers.Flatten(name=f"{name}_flatten")(image)
    x = apply_dense_stack(x, config.dense_units, batchnorm=config.batchnorm,
                          dropout=config.dropout, name=name)
    if output_units is not None:
        x = layers.Dense(output_units, name=f"{name}_logits")(x)
    return keras.Model(image, x, name=name)


FAMILY = TowerFamily("mlp", MLPTower, build_mlp_tower)
