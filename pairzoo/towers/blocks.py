"""Small blocks the tower families share; every layer gets an explicit, stable name."""

from __future__ import annotations

from keras import layers


def apply_dense_stack(x, units: list[int], *, batchnorm: bool, dropout: float, name: str):
    """[dense -> [batch norm] -> ReLU -> [dropout]] for each width in `units`."""
    for i, width in enumerate(units):
        x = layers.Dense(width, name=f"{name}_dense{i}")(x)
        if batchnorm:
            x = layers.BatchNormalization(name=f"{name}_dense{i}_bn")(x)
        x = layers.ReLU(name=f"{name}_dense{i}_relu")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_dense{i}_dropout")(x)
    return x
