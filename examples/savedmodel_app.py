"""Classify digit pairs with an exported SavedModel, using TensorFlow alone (no pairzoo).

    python savedmodel_app.py exports/siamese_fullyconv/release pairs.npy

pairs.npy: (N, 2, 14, 14) or one (2, 14, 14) pair of raw 0-255 pixels, white digits on black
(examples/README.md shows how to make one).
"""

import os
import sys

import numpy as np

# TensorFlow's C++ start-up lines (CPU features, absl) are for its developers, not this app's
# users; set before the import, since they are printed while it loads. An app's own choice.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402


def classify(model_dir: str, pairs: np.ndarray) -> dict[str, np.ndarray]:
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    outputs = serve(pair=tf.constant(pairs, dtype=tf.float32))  # a dict, keyed by output name
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def describe(outputs: dict[str, np.ndarray], i: int) -> str:
    p = float(outputs["compare"][i, 0])  # P(first digit <= second digit)
    sign = "<=" if p > 0.5 else ">"  # the rule every export states (its input.decision)
    if "digit_a" not in outputs:  # two-channel models predict the comparison only
        return f"pair {i}: first {sign} second  (P(first <= second) = {p:.3f})"
    a, b = outputs["digit_a"][i].argmax(), outputs["digit_b"][i].argmax()
    return f"pair {i}: {a} {sign} {b}  (P(first <= second) = {p:.3f})"


if __name__ == "__main__":
    model_dir, pairs_file = sys.argv[1:3]
    pairs = np.load(pairs_file).astype(np.float32)
    if pairs.shape[-3:] != (2, 14, 14):
        sys.exit(f"{pairs_file}: expected (N, 2, 14, 14) pairs, got shape {pairs.shape}")
    pairs = pairs.reshape(-1, 2, 14, 14)
    outputs = classify(model_dir, pairs)
    for i in range(len(pairs)):
        print(describe(outputs, i))
