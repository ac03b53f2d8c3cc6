"""pairzoo's custom layers: all serializable, all `keras.ops` only (any backend, TFLite builtins).

Registered under the package name "pairzoo", so `keras.models.load_model` finds them once
`pairzoo` (or `pairzoo.layers`) has been imported.
"""

from __future__ import annotations

import numpy as np
from keras import layers, ops, saving

from pairzoo.interface import KERAS_PACKAGE as PACKAGE


@saving.register_keras_serializable(package=PACKAGE)
class SplitPair(layers.Layer):
    """(N, 2, H, W) pair -> two (N, H, W, 1) channels-last digit images."""

    def call(self, pair):
        first = ops.expand_dims(pair[:, 0], axis=-1)
        second = ops.expand_dims(pair[:, 1], axis=-1)
        return first, second

    def compute_output_shape(self, input_shape):
        digit = (input_shape[0], input_shape[2], input_shape[3], 1)
        return digit, digit


@saving.register_keras_serializable(package=PACKAGE)
class TwoClassProbability(layers.Layer):
    """Two decision logits [a > b, a <= b] -> (N, 1) P(a <= b) = softmax(logits)[:, 1].

    The reports' decision layers end in 2 units with cross-entropy; keeping those 2 units keeps
    their parameter counts, and sigmoid(l1 - l0) equals that softmax's second column exactly.
    """

    def call(self, logits):
        return ops.sigmoid(logits[:, 1:2] - logits[:, 0:1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)


@saving.register_keras_serializable(package=PACKAGE)
class DigitComparison(layers.Layer):
    """The hard-coded decision: from two digit distributions (N, C), P(first <= second), (N, 1).

    mode="argmax":        1.0 where argmax(p_a) <= argmax(p_b), else 0.0 (not differentiable).
    mode="probabilistic": the exact P(a <= b) = sum_{i <= j} p_a(i) p_b(j) for independent
                          digits; differentiable, so it can be trained end to end.

    The argmax is built from max/equal/min rather than `ops.argmax`: on TensorFlow that lowers
    to a BitwiseAnd that TFLite cannot run as a builtin op. Ties go to the first index, as
    `argmax` does.
    """

    def __init__(self, mode: str = "argmax", num_classes: int = 10, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("argmax", "probabilistic"):
            raise ValueError(f"mode must be 'argmax' or 'probabilistic'. Received: mode={mode!r}")
        self.mode = mode
        self.num_classes = num_classes
        # upper[i, j] = 1 where i <= j: the (first, second) class pairs that count as "<="
        self._upper = np.triu(np.ones((num_classes, num_classes), dtype="float32"))
        self._positions = np.arange(num_classes, dtype="float32")

    def _first_argmax(self, probs):
        is_max = ops.equal(probs, ops.max(probs, axis=-1, keepdims=True))
        not_max_position = ops.cast(self.num_classes, probs.dtype)
        positions = ops.where(is_max, ops.cast(self._positions, probs.dtype), not_max_position)
        return ops.min(positions, axis=-1, keepdims=True)

    def call(self, probs_a, probs_b):
        if self.mode == "argmax":
            return ops.cast(
                ops.less_equal(self._first_argmax(probs_a), self._first_argmax(probs_b)),
                probs_a.dtype,
            )
        upper = ops.cast(self._upper, probs_a.dtype)
        return ops.sum(ops.matmul(probs_a, upper) * probs_b, axis=-1, keepdims=True)

    def compute_output_shape(self, probs_a_shape, probs_b_shape):
        return (probs_a_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "num_classes": self.num_classes}


@saving.register_keras_serializable(package=PACKAGE)
class TrainingOnly(layers.Layer):
    """Applies `layer` only when called with training=True, else passes inputs through.

    Keras's random preprocessing layers default to training=True, so a bare `model(x)` or
    `model.export()` would augment at inference; wrapped, only training augments.
    """

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = saving.deserialize_keras_object(layer) if isinstance(layer, dict) else layer

    def build(self, input_shape):
        self.layer.build(input_shape)  # its seed-generator state belongs to this layer

    def call(self, inputs, training=None):
        return self.layer(inputs, training=True) if training else inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "layer": saving.serialize_keras_object(self.layer)}
