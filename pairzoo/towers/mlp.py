"""Fully connected towers: flattened pixels through dense layers (linear siamese, FconnNet)."""

from __future__ import annotations

import keras
from keras import layers

from pairzoo.config import MLPTower
from pairzoo.towers.blocks import apply_dense_stack


def build_mlp_tower(config: MLPTower, input_shape, output_units: int | None,
                    name: str) -> keras.Model:
    image = keras.Input(input_shape, name=f"{name}_image")
    x = layers.Flatten(name=f"{name}_flatten")(image)
    x = apply_dense_stack(x, config.dense_units, batchnorm=config.batchnorm,
                          dropout=config.dropout, name=name)
    if output_units is not None:
        x = layers.Dense(output_units, name=f"{name}_logits")(x)
    return keras.Model(image, x, name=name)
