"""Classify digit pairs with an exported .tflite file, using ai-edge-litert and numpy only.

    python tflite_device.py exports/siamese_fullyconv/release.tflite pairs.npy

pairs.npy: (N, 2, 14, 14) or one (2, 14, 14) pair of raw 0-255 pixels, white digits on black
(examples/README.md shows how to make one).
The same code runs the float, float16, dynamic-range and int8 files: all take float32 pixels.
"""

import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def classify(model_file: str, pairs: np.ndarray) -> dict[str, np.ndarray]:
    # The signature runner resizes the input to the batch and returns outputs by name
    # (TFLite does not keep the order of multiple outputs, names are stable).
    run = Interpreter(model_path=model_file).get_signature_runner("serving_default")
    return run(pair=pairs)


def describe(outputs: dict[str, np.ndarray], i: int) -> str:
    p = float(outputs["compare"][i, 0])  # P(first digit <= second digit)
    sign = "<=" if p > 0.5 else ">"  # the rule every export states (its input.decision)
    if "digit_a" not in outputs:  # two-channel models predict the comparison only
        return f"pair {i}: first {sign} second  (P(first <= second) = {p:.3f})"
    a, b = outputs["digit_a"][i].argmax(), outputs["digit_b"][i].argmax()
    return f"pair {i}: {a} {sign} {b}  (P(first <= second) = {p:.3f})"


if __name__ == "__main__":
    model_file, pairs_file = sys.argv[1:3]
    pairs = np.load(pairs_file).astype(np.float32)
    if pairs.shape[-3:] != (2, 14, 14):
        sys.exit(f"{pairs_file}: expected (N, 2, 14, 14) pairs, got shape {pairs.shape}")
    pairs = pairs.reshape(-1, 2, 14, 14)
    outputs = classify(model_file, pairs)
    for i in range(len(pairs)):
        print(describe(outputs, i))
