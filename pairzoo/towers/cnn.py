"""Convolutional towers: LeNet-like stacks, LeNet5, LeNet5 fully convolutional, deep CNNs."""

from __future__ import annotations

import keras
from keras import layers

from pairzoo.config import CNNTower
from pairzoo.errors import ConfigError
from pairzoo.towers.blocks import apply_dense_stack, apply_norm_relu, batch_norm


def _per_conv(values: list, n: int, what: str) -> list:
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ConfigError(f"tower.{what} needs one value or one per convolution ({n}); "
                          f"got {values}")
    return values


def build_cnn_tower(config: CNNTower, input_shape, output_units: int | None,
                    name: str) -> keras.Model:
    """`output_units` logits, or (None) the flattened features for a head that reads them."""
    n = len(config.filters)
    per_conv = {what: _per_conv(getattr(config, what), n, what)
                for what in ("kernel_sizes", "pool_sizes", "pool_strides", "batchnorm",
                             "conv_dropout")}
    image = keras.Input(input_shape, name=f"{name}_image")
    x = image
    for i, filters in enumerate(config.filters):
        block = f"{name}_block{i}"
        x = layers.Conv2D(filters, per_conv["kernel_sizes"][i], padding=config.padding,
                          name=f"{block}_conv")(x)
        x = apply_norm_relu(x, per_conv["batchnorm"][i], config.bn_after_relu, block)
        pool = per_conv["pool_sizes"][i]
        if pool > 1:
            x = layers.MaxPooling2D(pool, strides=per_conv["pool_strides"][i] or pool,
                                    name=f"{block}_pool")(x)
        if per_conv["conv_dropout"][i]:
            x = layers.Dropout(per_conv["conv_dropout"][i], name=f"{block}_dropout")(x)
    if config.fully_convolutional:
        x = _fully_convolutional_top(config, x, output_units, name)
    else:
        x = layers.Flatten(name=f"{name}_flatten")(x)
        x = apply_dense_stack(x, config.dense_units, batchnorm=config.dense_batchnorm,
                              dropout=config.dropout, bn_after_relu=config.dense_bn_after_relu,
                              name=name)
        if output_units is not None:
            x = layers.Dense(output_units, name=f"{name}_logits")(x)
    if output_units is not None:
        x = _output_activation(config, x, name)
    return keras.Model(image, x, name=name)


def _fully_convolutional_top(config: CNNTower, x, output_units: int | None, name: str):
    """Dense layers as convolutions: the first spans what is left of the map, then 1x1."""
    widths = [*config.dense_units, *([output_units] if output_units is not None else [])]
    for i, width in enumerate(widths):
        kernel = (x.shape[1], x.shape[2]) if i == 0 else 1
        x = layers.Conv2D(width, kernel, name=f"{name}_fc{i}_conv")(x)
        if i < len(config.dense_units):
            x = apply_norm_relu(x, config.dense_batchnorm, config.dense_bn_after_relu,
                                f"{name}_fc{i}")
            if config.dropout:
                x = layers.Dropout(config.dropout, name=f"{name}_fc{i}_dropout")(x)
    return layers.Flatten(name=f"{name}_fc_flatten")(x)  # (N, 1, 1, units) -> (N, units)


def _output_activation(config: CNNTower, x, name: str):
    if config.output_relu:
        x = layers.ReLU(name=f"{name}_logits_relu")(x)
    if config.output_batchnorm:
        x = batch_norm(f"{name}_logits_bn")(x)
    return x
