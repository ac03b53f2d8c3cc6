"""What the fused batch norm buys: pairzoo's layer against Keras's own, epoch by epoch.

    python benchmarks/bench_batchnorm.py [--reps 3] [--epochs 8] [--models siamese_fullyconv ...]

Each run trains in a fresh process on the fast path (1,000 pairs, the preset's recipe, fewer
epochs: the per-epoch times do not depend on how many follow), with one of three batch norms:
- fused: pairzoo.layers.BatchNormalization (FusedBatchNormV3; moving statistics updated as
  Keras does, from the biased batch variance);
- keras: keras.layers.BatchNormalization (tf.nn.moments + tf.nn.batch_normalization);
- fused_ema: the kernel updating the moving statistics itself (exponential_avg_factor), which
  is PyTorch's convention (unbiased variance), not Keras's: what that convention costs.
Modes alternate within each repetition, so the ratios are side by side. Prints one figure per
line: the first epoch (tracing included) and the median later epoch, per mode, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)

MODES = ("fused", "keras", "fused_ema")


def worker(mode: str, model: str, epochs: int, seed: int) -> dict:
    import keras

    from pairzoo.towers import blocks

    if mode == "keras":
        blocks.BatchNormalization = keras.layers.BatchNormalization
    elif mode == "fused_ema":
        blocks.BatchNormalization = _fused_ema_layer()
    from pairzoo.training import train

    class EpochClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.marks = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.marks.append(time.perf_counter())

    clock = EpochClock()
    result = train(model, seed=seed, callbacks=[clock], engine="fast",
                   overrides={"train.epochs": epochs, "train.n_train": 1000,
                              "train.n_test": 1000})
    epochs_s = [b - a for a, b in zip(clock.marks, clock.marks[1:], strict=False)]
    return {"first": epochs_s[0], "steady": statistics.median(epochs_s[1:]),
            "test_error": result.metrics["test_error"]}


def _fused_ema_layer():
    import tensorflow as tf

    from pairzoo.layers import BatchNormalization

    class FusedEma(BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            if not (training and self.trainable) or not self._fusable(inputs, mask):
                return super().call(inputs, training=training, mask=mask)
            x, channels = inputs, inputs.shape[-1]
            if len(x.shape) == 2:
                x = tf.reshape(x, (-1, 1, 1, channels))
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, self.gamma, self.beta, mean=self.moving_mean, variance=self.moving_variance,
                epsilon=self.epsilon, is_training=True,
                exponential_avg_factor=1.0 - self.momentum)
            self.moving_mean.assign(mean)
            self.moving_variance.assign(variance)
            return tf.reshape(y, tf.shape(inputs))

    return FusedEma


def run(mode: str, model: str, epochs: int, seed: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", mode, model, str(epochs),
                          str(seed)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=["siamese_fullyconv", "siamese_resnet"])
    parser.add_argument("--worker", nargs=4)
    args = parser.parse_args()
    if args.worker:
        mode, model, epochs, seed = args.worker
        print(json.dumps(worker(mode, model, int(epochs), int(seed))))
        return
    print(f"load average at start {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    for model in args.models:
        results = {mode: [] for mode in MODES}
        for rep in range(args.reps):
            for mode in MODES:  # alternating, one process each
                results[mode].append(run(mode, model, args.epochs, rep))
        median = {mode: {k: statistics.median(r[k] for r in runs) for k in ("first", "steady")}
                  for mode, runs in results.items()}
        for mode in MODES:
            errors = ", ".join(f"{r['test_error']:.1f}" for r in results[mode])
            print(f"{model} {mode}: first epoch {median[mode]['first']:.2f} s, later epochs "
                  f"{median[mode]['steady']:.3f} s (medians of {args.reps}); test error % "
                  f"{errors}")
        for kind in ("first", "steady"):
            print(f"{model} {kind} epoch, keras / fused: "
                  f"{median['keras'][kind] / median['fused'][kind]:.2f}x; fused / fused_ema: "
                  f"{median['fused'][kind] / median['fused_ema'][kind]:.2f}x")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
