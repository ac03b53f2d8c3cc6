"""Recurrent towers: an Elman RNN (tanh) reading the digit row by row."""

from __future__ import annotations

import keras
from keras import layers

from pairzoo.config import RNNTower
from pairzoo.towers.blocks import apply_dense_stack


def build_rnn_tower(config: RNNTower, input_shape, output_units: int, name: str) -> keras.Model:
    height, width, channels = input_shape
    image = keras.Input(input_shape, name=f"{name}_image")
    x = layers.Reshape((height, width * channels), name=f"{name}_rows")(image)  # (N, 14, 14)
    for i in range(config.layers):
        last = i == config.layers - 1
        x = layers.SimpleRNN(config.units, return_sequences=not last, name=f"{name}_rnn{i}")(x)
    x = apply_dense_stack(x, config.dense_units, batchnorm=False, dropout=config.dropout,
                          name=name)
    logits = layers.Dense(output_units, name=f"{name}_logits")(x)
    return keras.Model(image, logits, name=name)
