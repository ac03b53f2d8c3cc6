"""Convolutional towers: LeNet-like stacks, LeNet5, LeNet5 fully convolutional, deep CNNs."""

from __future__ import annotations

from dataclasses import dataclass, field

from pairzoo.errors import ConfigError, check_choice
from pairzoo.towers.base import TowerFamily


@dataclass
class CNNTower:
    """Convolutions (each: conv -> [batch norm] -> ReLU -> [max-pool] -> [dropout]) then dense
    layers, then the output layer.

    Per-convolution fields take one value for all convolutions or one per convolution. With
    `fully_convolutional`, the dense layers are convolutions too: the first spans the remaining
    feature map, the rest are 1x1 (LeNet5 fully convolutional of report 001).
    """

    kind: str = "cnn"
    filters: list[int] = field(default_factory=lambda: [32, 64])  # channels, one per conv
    kernel_sizes: list[int] = field(default_factory=lambda: [3])
    padding: str = "valid"  # "valid" | "same"
    pool_sizes: list[int] = field(default_factory=lambda: [2])  # max-pool after conv i; 1 = none
    pool_strides: list[int] = field(default_factory=lambda: [0])  # 0 = the pool size
    batchnorm: list[bool] = field(default_factory=lambda: [False])  # after conv i
    conv_dropout: list[float] = field(default_factory=lambda: [0.0])  # after conv block i
    dense_units: list[int] = field(default_factory=lambda: [200])  # hidden layers before output
    dense_batchnorm: bool = False
    dropout: float = 0.0  # after every hidden dense layer
    fully_convolutional: bool = False
    bn_after_relu: bool = False  # conv blocks: ReLU -> BN, as some reports' code has it
    dense_bn_after_relu: bool = False  # the same for the dense (or fc-conv) layers
    output_relu: bool = False  # a ReLU (and maybe BN) on the digit outputs, as reports 001/003
    output_batchnorm: bool = False

    def __post_init__(self):
        check_choice("padding", self.padding, ("valid", "same"))
        n = len(self.filters)
        for what in ("kernel_sizes", "pool_sizes", "pool_strides", "batchnorm", "conv_dropout"):
            values = getattr(self, what)
            if len(values) not in (1, n):
                raise ConfigError(f"tower.{what} needs one value or one per convolution ({n}); "
                                  f"got {values}")

    def per_conv(self, what: str) -> list:
        """A per-convolution field with one value per convolution."""
        values = getattr(self, what)
        return values * len(self.filters) if len(values) == 1 else values


def build_cnn_tower(config: CNNTower, input_shape, output_units: int | None, name: str):
    import keras
    from keras import layers

    from pairzoo.towers.blocks import apply_dense_stack, apply_norm_relu

    image = keras.Input(input_shape, name=f"{name}_image")
    x = image
    for i, filters in enumerate(config.filters):
        block = f"{name}_block{i}"
        x = layers.Conv2D(filters, config.per_conv("kernel_sizes")[i], padding=config.padding,
                          name=f"{block}_conv")(x)
        x = apply_norm_relu(x, config.per_conv("batchnorm")[i], config.bn_after_relu, block)
        pool = config.per_conv("pool_sizes")[i]
        if pool > 1:
            x = layers.MaxPooling2D(pool, strides=config.per_conv("pool_strides")[i] or pool,
                                    name=f"{block}_pool")(x)
        dropout = config.per_conv("conv_dropout")[i]
        if dropout:
            x = layers.Dropout(dropout, name=f"{block}_dropout")(x)
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
    from keras import layers

    from pairzoo.towers.blocks import apply_norm_relu

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
    from keras import layers

    from pairzoo.towers.blocks import batch_norm

    if config.output_relu:
        x = layers.ReLU(name=f"{name}_logits_relu")(x)
    if config.output_batchnorm:
        x = batch_norm(f"{name}_logits_bn")(x)
    return x


FAMILY = TowerFamily("cnn", CNNTower, build_cnn_tower)
