"""The serving interface every pairzoo model and export shares: one input, named outputs.

Apps read these names, so they are fixed here once and the model builder, the exporters, the
model cards and `pairzoo predict` all take them from this module (which imports nothing heavy).
"""

from __future__ import annotations

KERAS_PACKAGE = "pairzoo"  # .keras files name our classes "pairzoo>PairModel", ...
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "pair"
PAIR_SHAPE = (2, 14, 14)  # a pair of 14x14 digits, raw 0-255 pixels, white on black
PIXEL_RANGE = (0.0, 255.0)
# MNIST's pixel mean and std (of x / 255): the normalisation the reports use, applied inside the
# model, so an exported model takes raw pixels, which is what an app has.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

DIGIT_LABELS = [str(d) for d in range(10)]
COMPARE_LABELS = ["first > second", "first <= second"]

# output name -> what it holds; two-channel models have only `compare`
OUTPUTS = {
    "compare": "(N, 1) P(first digit <= second digit)",
    "digit_a": "(N, 10) class probabilities of the first digit",
    "digit_b": "(N, 10) class probabilities of the second digit",
}
# a hard-coded argmax head compares the two predicted classes: its `compare` is a decision
ARGMAX_COMPARE = "(N, 1) 1.0 if argmax(digit_a) <= argmax(digit_b) else 0.0 (a decision, not a " \
                 "probability)"


def output_meanings(head: str, outputs: list[str]) -> dict[str, str]:
    """What each of a model's outputs holds, for cards, sidecars and `pairzoo show`."""
    meanings = {name: OUTPUTS[name] for name in outputs}
    if head == "argmax":
        meanings["compare"] = ARGMAX_COMPARE
    return meanings


def input_spec() -> dict:
    """The input as export sidecars and cards describe it."""
    return {"name": INPUT_NAME, "shape": [None, *PAIR_SHAPE], "dtype": "float32",
            "range": list(PIXEL_RANGE),
            "layout": "pair[:, 0] is the first digit, pair[:, 1] the second; 14x14 each, "
                      "white digit on black as in MNIST",
            "normalisation": f"inside the model: (x / 255 - {MNIST_MEAN}) / {MNIST_STD}"}
