"""Residual towers: blocks that keep the channel count and the map size constant."""

from __future__ import annotations

from dataclasses import dataclass, field

from pairzoo.towers.base import TowerFamily


@dataclass
class ResNetTower:
    """A stem convolution, `blocks` residual blocks at constant width and size, dense layers."""

    kind: str = "resnet"
    channels: int = 32
    kernel_size: int = 3
    blocks: int = 3
    stem_pool: int = 1  # max-pool after the stem; 1 = none
    final_pool: int = 1  # average-pool before the dense layers; 1 = none
    dense_units: list[int] = field(default_factory=list)
    batchnorm: bool = True
    dropout: float = 0.0


def apply_residual_block(x, channels: int, kernel: int, *, batchnorm: bool, name: str):
    """x + (conv -> bn -> ReLU -> conv -> bn)(x), then ReLU: the basic block of ResNet."""
    from keras import layers

    from pairzoo.towers.blocks import batch_norm

    y = layers.Conv2D(channels, kernel, padding="same", name=f"{name}_conv1")(x)
    if batchnorm:
        y = batch_norm(f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(channels, kernel, padding="same", name=f"{name}_conv2")(y)
    if batchnorm:
        y = batch_norm(f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_out")(y)


def build_resnet_tower(config: ResNetTower, input_shape, output_units: int | None, name: str):
    import keras
    from keras import layers

    from pairzoo.towers.blocks import apply_dense_stack, batch_norm

    image = keras.Input(input_shape, name=f"{name}_image")
    x = layers.Conv2D(config.channels, config.kernel_size, padding="same",
                      name=f"{name}_stem_conv")(image)
    if config.batchnorm:
        x = batch_norm(f"{name}_stem_bn")(x)
    x = layers.ReLU(name=f"{name}_stem_relu")(x)
    if config.stem_pool > 1:
        x = layers.MaxPooling2D(config.stem_pool, name=f"{name}_stem_pool")(x)
    for i in range(config.blocks):
        x = apply_residual_block(x, config.channels, config.kernel_size,
                                 batchnorm=config.batchnorm, name=f"{name}_block{i}")
    if config.final_pool > 1:
        x = layers.AveragePooling2D(config.final_pool, name=f"{name}_final_pool")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = apply_dense_stack(x, config.dense_units, batchnorm=False, dropout=config.dropout,
                          name=name)
    if output_units is not None:
        x = layers.Dense(output_units, name=f"{name}_logits")(x)
    return keras.Model(image, x, name=name)


FAMILY = TowerFamily("resnet", ResNetTower, build_resnet_tower)
