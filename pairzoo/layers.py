"""pairzoo's custom layers: all serializable, all `keras.ops` only (any backend, TFLite builtins),
except where TensorFlow has a faster kernel for the same arithmetic (BatchNormalization).

Registered under the package name "pairzoo", so `keras.models.load_model` finds them once
`pairzoo` (or `pairzoo.layers`) has been imported.
"""

from __future__ import annotations

import numpy as np
from keras import backend, layers, ops, random, saving

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


@saving.register_keras_serializable(package=PACKAGE)
class BatchNormalization(layers.BatchNormalization):
    """Keras's batch norm, computed by one fused kernel on TensorFlow.

    Keras 3 computes it on TensorFlow as `tf.nn.moments` + `tf.nn.batch_normalization`, a
    handful of small ops per layer; at batch 100 their per-op cost, not arithmetic, is the
    bill. Here the TensorFlow backend calls FusedBatchNormV3 (NHWC; dense features (N, C) go
    through it as (N, 1, 1, C)): in training it normalises with the batch statistics and the
    moving averages are updated as Keras does, in inference it uses the moving statistics.
    Config, weights (gamma, beta, moving_mean, moving_variance) and serialization are Keras's
    own; other backends, and what the kernel does not cover (masks, renorm, synchronized
    statistics, other axes or ranks, scale/center off, float64), take Keras's own code path.

    One convention differs between the two and is corrected: the fused kernel returns the
    unbiased batch variance (x n/(n-1), PyTorch's convention for the running variance), while
    Keras averages the biased one into moving_variance; n = N (x H x W) values per channel.
    """

    def _fusable(self, inputs, mask) -> bool:
        rank = len(inputs.shape)
        return (backend.backend() == "tensorflow" and mask is None and not self.renorm
                and not self.synchronized and self.scale and self.center
                and rank in (2, 4) and self.axis in (-1, rank - 1)
                and backend.standardize_dtype(inputs.dtype) in ("float16", "bfloat16",
                                                                 "float32"))

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # here only: other backends never import it

        # as Keras: statistics in float32 even under a mixed-precision policy
        x = tf.cast(inputs, "float32")
        dense, channels = len(x.shape) == 2, x.shape[-1]
        if dense:
            x = tf.reshape(x, (-1, 1, 1, channels))  # (N, C) -> (N, 1, 1, C)
        gamma, beta = tf.cast(self.gamma, "float32"), tf.cast(self.beta, "float32")
        if training and self.trainable:
            y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, is_training=True)
            n = tf.cast(tf.size(x) // channels, "float32")
            variance = unbiased * ((n - 1.0) / n)  # Keras averages the biased one
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + variance * (1.0 - momentum))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=tf.cast(self.moving_mean, "float32"),
                variance=tf.cast(self.moving_variance, "float32"), epsilon=self.epsilon,
                is_training=False)
        if dense:
            y = tf.reshape(y, (-1, channels))
        return tf.cast(y, self.compute_dtype)


@saving.register_keras_serializable(package=PACKAGE)
class RandomDistortion(layers.Layer):
    """A random affine map and elastic field per image, applied in one bilinear resampling.

    Per image: a shift of up to `shift` pixels each way, a rotation of up to `rotation`
    degrees, a zoom of up to `zoom` (0.1: 90-110 %), a shear of up to `shear` along each axis,
    and an elastic field (Simard et al. 2003): per axis independent uniform noise in [-1, 1],
    smoothed by a Gaussian of `sigma` pixels, times `alpha` pixels. Each output pixel reads the
    image where the map sends it; outside the image it reads `fill` (the background).

    One resampling, because each one blurs: Keras's RandomTranslation, RandomRotation,
    RandomZoom and RandomShear in a row resample a 14x14 digit four times and wash its strokes
    out. Keras's RandomElasticTransform does not serve at 14x14 either (see FACTS: its x and y
    fields come from one draw, its smoothing scales with the image, it loops per image).

    It distorts whenever called: wrap it in TrainingOnly so that inference and exports pass
    images through untouched. With every strength 0 it is the identity.
    """

    def __init__(self, shift: float = 0.0, rotation: float = 0.0, zoom: float = 0.0,
                 shear: float = 0.0, alpha: float = 0.0, sigma: float = 2.0, fill: float = 0.0,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if min(shift, rotation, zoom, shear, alpha) < 0 or sigma <= 0 or zoom >= 1:
            raise ValueError("strengths must be >= 0 (zoom < 1) and sigma > 0; got "
                             f"{shift}, {rotation}, {zoom}, {shear}, {alpha}, {sigma}")
        self.shift, self.rotation, self.zoom, self.shear = (float(shift), float(rotation),
                                                            float(zoom), float(shear))
        self.alpha, self.sigma, self.fill, self.seed = float(alpha), float(sigma), float(fill), seed
        self.seed_generator = random.SeedGenerator(seed)
        radius = int(np.ceil(3 * sigma))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        self._taps = (taps / taps.sum()).astype("float32")

    def displacement(self, batch, height: int, width: int):
        """The elastic field: (batch, height, width, 2) displacements in pixels (rows, then
        columns)."""
        noise = random.uniform((batch, height, width, 2), -1.0, 1.0, seed=self.seed_generator)
        size = len(self._taps)
        # separable Gaussian smoothing: one depthwise pass down the rows, one along them;
        # "same" zero padding, as scipy's gaussian_filter(mode="constant") that Simard used
        down = ops.reshape(ops.convert_to_tensor(self._taps), (size, 1, 1, 1))
        along = ops.reshape(ops.convert_to_tensor(self._taps), (1, size, 1, 1))
        smooth = ops.depthwise_conv(noise, ops.tile(down, (1, 1, 2, 1)), padding="same")
        smooth = ops.depthwise_conv(smooth, ops.tile(along, (1, 1, 2, 1)), padding="same")
        return self.alpha * smooth

    def _uniform(self, batch, bound: float):
        return random.uniform((batch, 1, 1), -bound, bound, seed=self.seed_generator)

    def call(self, images):
        if not any((self.shift, self.rotation, self.zoom, self.shear, self.alpha)):
            return images
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        # where each output pixel reads: the centred grid through the inverse of a random
        # rotation x shear x zoom (drawn symmetrically, so the inverse is as random), shifted
        y = ops.reshape(ops.arange(height, dtype="float32"), (1, height, 1)) - (height - 1) / 2
        x = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, width)) - (width - 1) / 2
        angle = self._uniform(batch, np.deg2rad(self.rotation))
        scale = 1.0 + self._uniform(batch, self.zoom)
        shear_y, shear_x = self._uniform(batch, self.shear), self._uniform(batch, self.shear)
        y, x = (y + shear_y * x) / scale, (x + shear_x * y) / scale
        cos, sin = ops.cos(angle), ops.sin(angle)
        rows = cos * y - sin * x + (height - 1) / 2 + self._uniform(batch, self.shift)
        cols = sin * y + cos * x + (width - 1) / 2 + self._uniform(batch, self.shift)
        if self.alpha:
            moved = self.displacement(batch, height, width)
            rows, cols = rows + moved[..., 0], cols + moved[..., 1]
        return self._bilinear(images, rows, cols)

    def _bilinear(self, images, rows, cols):
        """Bilinear reads at (rows, cols) (batch, height, width); `fill` outside the image."""
        batch = ops.shape(images)[0]
        height, width, channels = images.shape[1], images.shape[2], images.shape[3]
        flat = ops.reshape(images, (batch, height * width, channels))
        top, left = ops.floor(rows), ops.floor(cols)
        down = ops.reshape(rows - top, (batch, height * width, 1))
        right = ops.reshape(cols - left, (batch, height * width, 1))

        def read(r, c):
            inside = (r >= 0) & (r <= height - 1) & (c >= 0) & (c <= width - 1)
            r = ops.cast(ops.clip(r, 0, height - 1), "int32")
            c = ops.cast(ops.clip(c, 0, width - 1), "int32")
            index = ops.tile(ops.reshape(r * width + c, (batch, height * width, 1)),
                             (1, 1, channels))
            inside = ops.cast(ops.reshape(inside, (batch, height * width, 1)), images.dtype)
            return ops.take_along_axis(flat, index, axis=1) * inside + self.fill * (1 - inside)

        upper = read(top, left) * (1 - right) + read(top, left + 1) * right
        lower = read(top + 1, left) * (1 - right) + read(top + 1, left + 1) * right
        return ops.reshape(upper * (1 - down) + lower * down, (batch, height, width, channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "shift": self.shift, "rotation": self.rotation,
                "zoom": self.zoom, "shear": self.shear, "alpha": self.alpha,
                "sigma": self.sigma, "fill": self.fill, "seed": self.seed}
