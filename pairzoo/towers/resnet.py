"""Residual towers: blocks that keep the channel count and the map size constant."""

from __future__ import annotations

import keras
from keras import layers

from pairzoo.config import ResNetTower
from pairzoo.towers.blocks import apply_dense_stack, batch_norm


def apply_residual_block(x, channels: int, kernel: int, *, batchnorm: bool, name: str):
    """x + (conv -> bn -> ReLU -> conv -> bn)(x), then ReLU: the basic block of ResNet."""
    y = layers.Conv2D(channels, kernel, padding="same", name=f"{name}_conv1")(x)
    if batchnorm:
        y = batch_norm(f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(channels, kernel, padding="same", name=f"{name}_conv2")(y)
    if batchnorm:
        y = batch_norm(f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_out")(y)


def build_resnet_tower(config: ResNetTower, input_shape, output_units: int | None,
                       name: str) -> keras.Model:
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
