"""Convolutional towers: LeNet-like stacks, LeNet5, LeNet5 fully convolutional, deep CNNs."""

from __future__ import annotations

import keras
from keras import layers

from pairzoo.config import CNNTower
from pairzoo.errors import ConfigError
from pairzoo.towers.blocks import apply_dense_stack


def _per_conv(values: list[int], n: int, what: str) -> list[int]:
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ConfigError(f"tower.{what} needs one value or one per convolution ({n}); "
                          f"got {values}")
    return values


def apply_conv_block(x, filters: int, kernel: int, *, padding: str, batchnorm: bool, pool: int,
                     dropout: float, name: str):
    """conv -> [batch norm] -> ReLU -> [max-pool] -> [dropout]."""
    x = layers.Conv2D(filters, kernel, padding=padding, name=f"{name}_conv")(x)
    if batchnorm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if pool > 1:
        x = layers.MaxPooling2D(pool, name=f"{name}_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def build_cnn_tower(config: CNNTower, input_shape, output_units: int, name: str) -> keras.Model:
    n = len(config.filters)
    kernels = _per_conv(config.kernel_sizes, n, "kernel_sizes")
    pools = _per_conv(config.pool_sizes, n, "pool_sizes")
    image = keras.Input(input_shape, name=f"{name}_image")
    x = image
    for i, (filters, kernel, pool) in enumerate(zip(config.filters, kernels, pools, strict=False)):
        x = apply_conv_block(x, filters, kernel, padding=config.padding,
                             batchnorm=config.batchnorm, pool=pool,
                             dropout=config.conv_dropout, name=f"{name}_block{i}")
    if config.fully_convolutional:
        # Dense layers as convolutions: the first spans what is left of the map, then 1x1.
        for i, width in enumerate([*config.dense_units, output_units]):
            kernel = (x.shape[1], x.shape[2]) if i == 0 else 1
            last = i == len(config.dense_units)
            x = layers.Conv2D(width, kernel, name=f"{name}_fc{i}_conv")(x)
            if last:
                break
            if config.batchnorm:
                x = layers.BatchNormalization(name=f"{name}_fc{i}_bn")(x)
            x = layers.ReLU(name=f"{name}_fc{i}_relu")(x)
            if config.dropout:
                x = layers.Dropout(config.dropout, name=f"{name}_fc{i}_dropout")(x)
        logits = layers.Flatten(name=f"{name}_logits")(x)  # (N, 1, 1, units) -> (N, units)
    else:
        x = layers.Flatten(name=f"{name}_flatten")(x)
        x = apply_dense_stack(x, config.dense_units, batchnorm=config.dense_batchnorm,
                              dropout=config.dropout, name=name)
        logits = layers.Dense(output_units, name=f"{name}_logits")(x)
    return keras.Model(image, logits, name=name)
