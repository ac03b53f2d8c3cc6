"""One batch-norm layer's training step in four formulations: CPU time per call.

    python benchmarks/bench_batchnorm_ops.py

Forward, backward (to the input, gamma and beta) and the moving-statistics update, 50 times
in one traced loop, TF threads 1/1, on the feature-map shapes of siamese_fullyconv and
siamese_resnet (batch 100) and of the per-epoch test evaluation (batch 1,000):
- keras: tf.nn.moments + tf.nn.batch_normalization (Keras 3's layer on TensorFlow);
- fused_ours: FusedBatchNormV3, moving statistics updated as Keras does (pairzoo's layer);
- fused_ema: FusedBatchNormV3 updating them itself (PyTorch's unbiased convention);
- onepass: E[x^2] - E[x]^2 and x * scale + offset (no shift: a bound on what fewer passes
  over the map can save; bench_batchnorm.py's onepass kind adds the shift a layer needs).
Process CPU time, median of 5 calls of the loop: a shared machine disturbs it less than it
disturbs wall time.
"""

from __future__ import annotations

import statistics
import time

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)

SHAPES = [(100, 12, 12, 32), (100, 4, 4, 64), (100, 1, 1, 120), (100, 14, 14, 32),
          (1000, 12, 12, 32)]
EPSILON, MOMENTUM = 1e-5, 0.9


def formulations():
    import tensorflow as tf

    def update(state, mean, variance):
        moving_mean, moving_variance = state
        moving_mean.assign(moving_mean * MOMENTUM + mean * (1 - MOMENTUM))
        moving_variance.assign(moving_variance * MOMENTUM + variance * (1 - MOMENTUM))

    def keras(x, gamma, beta, state):
        mean, variance = tf.nn.moments(x, [0, 1, 2])
        update(state, mean, variance)
        return tf.nn.batch_normalization(x, mean, variance, beta, gamma, EPSILON)

    def fused_ours(x, gamma, beta, state):
        y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=EPSILON,
                                                             is_training=True)
        n = tf.cast(tf.size(x) // x.shape[-1], tf.float32)
        update(state, mean, unbiased * ((n - 1.0) / n))
        return y

    def fused_ema(x, gamma, beta, state):
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, mean=state[0], variance=state[1], epsilon=EPSILON,
            is_training=True, exponential_avg_factor=1 - MOMENTUM)
        state[0].assign(mean)
        state[1].assign(variance)
        return y

    def onepass(x, gamma, beta, state):
        mean = tf.reduce_mean(x, [0, 1, 2])
        variance = tf.reduce_mean(tf.square(x), [0, 1, 2]) - tf.square(mean)
        update(state, tf.stop_gradient(mean), tf.stop_gradient(variance))
        scale = gamma * tf.math.rsqrt(variance + EPSILON)
        return x * scale + (beta - mean * scale)

    return {"keras": keras, "fused_ours": fused_ours, "fused_ema": fused_ema,
            "onepass": onepass}


def cpu_seconds(layer, shape) -> float:
    import tensorflow as tf

    channels = shape[-1]
    x = tf.random.normal(shape) * 2 + 1
    upstream = tf.random.normal(shape)
    gamma, beta = tf.Variable(tf.ones(channels)), tf.Variable(tf.zeros(channels))
    state = (tf.Variable(tf.zeros(channels)), tf.Variable(tf.ones(channels)))

    @tf.function
    def steps(x):
        total = 0.0
        for _ in tf.range(50):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x, gamma, beta, state) * upstream)
            grad_x, grad_gamma, _ = tape.gradient(loss, [x, gamma, beta])
            total += tf.reduce_sum(grad_x) + tf.reduce_sum(grad_gamma)
        return total

    steps(x)  # trace
    times = []
    for _ in range(5):
        start = time.process_time()
        steps(x)
        times.append(time.process_time() - start)
    return statistics.median(times) / 50


def main() -> None:
    import os

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(f"load average at start {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    for shape in SHAPES:
        results = {name: cpu_seconds(layer, shape) for name, layer in formulations().items()}
        print(f"{shape}: " + ", ".join(f"{name} {1e6 * seconds:.0f} us"
                                       for name, seconds in results.items())
              + " (CPU per training step)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
