"""The serving interface every pairzoo model and export shares: one input, named outputs.

Apps read these names, so they are fixed here once and the model builder, the exporters, the
model cards and `pairzoo predict` all take them from this module (which imports nothing heavy).
"""

from __future__ import annotations

KERAS_PACKAGE = "pairzoo"  # .keras files name our classes "pairzoo>PairModel", ...
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "pair"
PAIR_SHAPE = (2, 14, 14)  # a pair of 14x14 digits, raw 0-255 pixels, white on black
BATCH_DIM = "batch"  # the name of the first, variable dimension where a format names it (ONNX)
PIXEL_RANGE = (0.0, 255.0)
# MNIST's pixel mean and std (of x / 255): the normalisation the reports use, applied inside the
# model, so an exported model takes raw pixels, which is what an app has.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

DIGIT_LABELS = [str(d) for d in range(10)]
COMPARE_LABELS = ["first > second", "first <= second"]

# How an app makes the input from MNIST-like 28x28 digits: exactly what the training pairs are
# (pairzoo/data/pairs.py `downsample`, the course's `F.avg_pool2d(x, 2)` on raw pixels). The
# plausible alternatives are not the same input: x[::2, ::2], nearest or bilinear resizing cost
# up to 1.7 points of test error. Machine-readable fields first, then the same in words.
SOURCE_SIZE = (28, 28)
POOL_SIZE = (2, 2)
PREPROCESSING = {
    "from": "a 28x28 MNIST digit: raw uint8 pixels 0-255, white (255) digit on black (0)",
    "source_size": list(SOURCE_SIZE),
    "pooling": {"op": "mean", "size": list(POOL_SIZE), "stride": list(POOL_SIZE)},
    "pixel_scale": 1.0,
    "steps": [
        "take the 28x28 digit's raw 0-255 pixel values as float32 (no division by 255, no "
        "normalisation: the model normalises inside)",
        "2x2 mean: pixel (i, j) of the 14x14 digit is the mean of the four raw pixels "
        "[2i:2i+2, 2j:2j+2] (average pooling, stride 2; not x[::2, ::2], nearest or bilinear "
        "resizing)",
        "stack the two digits: pair[n, 0] = the first digit, pair[n, 1] = the second; float32 "
        "(N, 2, 14, 14)",
        "compare answers whether the first digit <= the second",
    ],
    "other_images": "grayscale; dark ink on light paper inverted to white on black; padded "
                    "with black to a square and fitted to 28x28 (box filter); then as above",
}
PREPROCESSING_TEXT = ("From two 28x28 MNIST digits (raw uint8 0-255, white digit on black): "
                      "keep the raw pixel values as float32, take the 2x2 mean (average "
                      "pooling, stride 2) to 14x14, and stack them as float32 (N, 2, 14, 14) "
                      "with pair[:, 0] the first digit and pair[:, 1] the second; `compare` "
                      "answers first <= second. Not x[::2, ::2], nearest or bilinear resizing, "
                      "and no division by 255: the model normalises inside.")

# One rule reads `compare` everywhere (evaluate's counts, `pairzoo predict`, the examples):
# P > 0.5 means "first <= second". It is Keras's own (keras.metrics.BinaryAccuracy and the
# training logs count `y_pred > 0.5`), so the figures measured while training, on the cards and
# by `pairzoo evaluate` stay the same numbers; a tie at exactly 0.5 reads ">".
DECISION_THRESHOLD = 0.5
DECISION_RULE = "first <= second when compare > 0.5"


def reads_less_equal(p):
    """True where a `compare` output reads "first <= second" (a float or a numpy array)."""
    return p > DECISION_THRESHOLD


# output name -> what it holds; two-channel models have only `compare`
OUTPUTS = {
    "compare": "(N, 1) P(first digit <= second digit)",
    "digit_a": "(N, 10) class probabilities of the first digit",
    "digit_b": "(N, 10) class probabilities of the second digit",
}
# a hard-coded argmax head compares the two predicted classes: its `compare` is a decision
ARGMAX_COMPARE = "(N, 1) 1.0 if argmax(digit_a) <= argmax(digit_b) else 0.0 (a decision, not a " \
                 "probability)"
# a learned head with no digit loss (aux weight 0): the digit outputs exist but learn nothing
UNTRAINED_DIGITS = "(N, 10) UNTRAINED: this model had no digit loss (aux weight 0), so these " \
                   "are not class probabilities (chance-level digit accuracy); use `compare` only"
UNTRAINED_NOTE = "untrained: no digit loss, aux weight 0"


def digit_outputs_trained(head: str, aux_weight: float) -> bool:
    """Whether a model's digit outputs learned the digits: a digit loss trains them, and a
    probabilistic head's comparison loss reaches them through P(a <= b); a learned (mlp) head
    with aux weight 0 leaves them untrained. (An argmax head needs aux weight > 0.)"""
    return aux_weight > 0 or head == "probabilistic"


def output_meanings(head: str, outputs: list[str], aux_weight: float = 1.0) -> dict[str, str]:
    """What each of a model's outputs holds, for cards, sidecars and `pairzoo show`."""
    meanings = {name: OUTPUTS[name] for name in outputs}
    if head == "argmax":
        meanings["compare"] = ARGMAX_COMPARE
    if not digit_outputs_trained(head, aux_weight):
        meanings |= {name: UNTRAINED_DIGITS for name in outputs if name != "compare"}
    return meanings


def input_spec() -> dict:
    """The input as export sidecars and cards describe it."""
    return {"name": INPUT_NAME, "shape": [None, *PAIR_SHAPE], "dtype": "float32",
            "range": list(PIXEL_RANGE),
            "layout": "pair[:, 0] is the first digit, pair[:, 1] the second; 14x14 each, "
                      "white digit on black as in MNIST",
            "preprocessing": PREPROCESSING, "how": PREPROCESSING_TEXT,
            "decision": DECISION_RULE,
            "normalisation": f"inside the model: (x / 255 - {MNIST_MEAN}) / {MNIST_STD}"}
