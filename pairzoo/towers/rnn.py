"""Recurrent towers: an Elman RNN (tanh) reading the digit row by row."""

from __future__ import annotations

from dataclasses import dataclass, field

from pairzoo.towers.base import TowerFamily


@dataclass
class RNNTower:
    """An Elman RNN reading the image one row at a time (14 steps of 14 pixels)."""

    kind: str = "rnn"
    units: int = 64
    layers: int = 1
    read_all_steps: bool = False  # flatten every step's output (14 x units), not the last only
    dense_units: list[int] = field(default_factory=list)
    dropout: float = 0.0


def build_rnn_tower(config: RNNTower, input_shape, output_units: int | None, name: str):
    import keras
    from keras import layers

    from pairzoo.towers.blocks import apply_dense_stack

    height, width, channels = input_shape
    image = keras.Input(input_shape, name=f"{name}_image")
    x = layers.Reshape((height, width * channels), name=f"{name}_rows")(image)  # (N, 14, 14)
    for i in range(config.layers):
        keep_steps = i < config.layers - 1 or config.read_all_steps
        x = layers.SimpleRNN(config.units, return_sequences=keep_steps, name=f"{name}_rnn{i}")(x)
    if config.read_all_steps:
        x = layers.Flatten(name=f"{name}_steps")(x)  # (N, 14 * units)
    x = apply_dense_stack(x, config.dense_units, batchnorm=False, dropout=config.dropout,
                          name=name)
    if output_units is not None:
        x = layers.Dense(output_units, name=f"{name}_logits")(x)
    return keras.Model(image, x, name=name)


FAMILY = TowerFamily("rnn", RNNTower, build_rnn_tower)
