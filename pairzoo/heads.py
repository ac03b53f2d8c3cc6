"""Pair heads: from the two digits' outputs to the `compare` output, P(first <= second)."""

from __future__ import annotations

from keras import layers

from pairzoo.config import ModelConfig
from pairzoo.layers import DigitComparison, TwoClassProbability


def apply_head(config: ModelConfig, logits_a, logits_b, probs_a, probs_b):
    """The `compare` tensor (N, 1) for the configured head."""
    if config.head in ("argmax", "probabilistic"):
        return DigitComparison(mode=config.head, name="compare")(probs_a, probs_b)
    inputs = (logits_a, logits_b) if config.head_input == "logits" else (probs_a, probs_b)
    x = layers.Concatenate(name="decision_input")(list(inputs))  # (N, 20)
    return apply_decision_mlp(x, config.head_units, batchnorm=config.head_batchnorm,
                              dropout=config.head_dropout)


def apply_decision_mlp(x, units: list[int], *, batchnorm: bool = False, dropout: float = 0.0):
    """Hidden layers, then 2 decision logits [a > b, a <= b] -> P(a <= b)."""
    for i, width in enumerate(units):
        x = layers.Dense(width, name=f"decision_dense{i}")(x)
        if batchnorm:
            x = layers.BatchNormalization(name=f"decision_dense{i}_bn")(x)
        x = layers.ReLU(name=f"decision_dense{i}_relu")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"decision_dense{i}_dropout")(x)
    logits = layers.Dense(2, name="decision_logits")(x)
    return TwoClassProbability(name="compare")(logits)
