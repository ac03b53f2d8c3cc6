"""Pair heads: from the two digits' outputs to the `compare` output, P(first <= second)."""

from __future__ import annotations

from keras import layers

from pairzoo.config import ModelConfig
from pairzoo.layers import DigitComparison, TwoClassProbability
from pairzoo.towers.blocks import apply_norm_relu


def apply_head(config: ModelConfig, outputs_a, outputs_b, probs_a=None, probs_b=None):
    """The `compare` tensor (N, 1) for the configured head.

    `outputs_a/b` are the towers' outputs (digit logits, or features when the head reads
    features); `probs_a/b` the digit probabilities (None without digit outputs).
    """
    if config.head in ("argmax", "probabilistic"):
        return DigitComparison(mode=config.head, name="compare")(probs_a, probs_b)
    if config.head_input == "probabilities":
        outputs_a, outputs_b = probs_a, probs_b
    x = layers.Concatenate(name="decision_input")([outputs_a, outputs_b])  # (N, 20) for digits
    for i, width in enumerate(config.head_units):
        x = layers.Dense(width, name=f"decision_dense{i}")(x)
        # report 001's code puts the head's batch norm after its ReLU
        x = apply_norm_relu(x, config.head_batchnorm, True, f"decision_dense{i}")
        if config.head_dropout:
            x = layers.Dropout(config.head_dropout, name=f"decision_dense{i}_dropout")(x)
    logits = layers.Dense(2, name="decision_logits")(x)  # [a > b, a <= b]
    return TwoClassProbability(name="compare")(logits)
