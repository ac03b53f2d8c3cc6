"""Classify digit pairs with an exported .onnx file, using onnxruntime and numpy only.

    pairzoo export siamese_vgg_aug --format onnx          # -> exports/siamese_vgg_aug/release.onnx
    python onnx_app.py exports/siamese_vgg_aug/release.onnx pairs.npy

pairs.npy: (N, 2, 14, 14) or one (2, 14, 14) pair of raw 0-255 pixels, white digits on black
(examples/README.md shows how to make one).
The labels, input spec and measured metrics travel inside the file (read below) and in the
release.onnx.json beside it.
"""

import json
import sys

import numpy as np
import onnxruntime


def classify(model_file: str, pairs: np.ndarray) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    # outputs by name: compare, and for siamese models digit_a and digit_b
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"pair": pairs}), strict=True))


def model_facts(model_file: str) -> dict:
    session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    return json.loads(session.get_modelmeta().custom_metadata_map.get("pairzoo", "{}"))


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
    print(f"model: {model_facts(model_file).get('origin', model_file)}", file=sys.stderr)
    outputs = classify(model_file, pairs.reshape(-1, 2, 14, 14))
    for i in range(len(outputs["compare"])):
        print(describe(outputs, i))
