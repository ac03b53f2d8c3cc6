"""What the fused batch norm buys: pairzoo's layer against Keras's own, epoch by epoch.

    python benchmarks/bench_batchnorm.py [--reps 3] [--epochs 8] [--models siamese_fullyconv ...]

Three batch norms, in the fast path's traced epoch (1,000 pairs, Adam 1e-3, batch 100):
- fused: pairzoo.layers.BatchNormalization (FusedBatchNormV3; moving statistics updated as
  Keras does, from the biased batch variance);
- keras: keras.layers.BatchNormalization (tf.nn.moments + tf.nn.batch_normalization);
- fused_ema: the kernel updating the moving statistics itself (exponential_avg_factor), which
  is PyTorch's convention (unbiased variance), not Keras's: what matching Keras costs;
- onepass (a candidate, training mode only): shifted one-pass moments (E[d^2] - E[d]^2 with
  d = x - one sample per channel) and y = x * scale + offset, autodiff for the gradient.
Later epochs: one process per model holds a trainer of each kind and alternates their epochs,
so all three see the same machine. First epochs (tracing included): a fresh process per run,
the kinds alternating, --reps times. Each figure is given as wall time and as the process's
CPU time (all its threads): on a machine shared with other work the CPU time is the steadier
measure of the work done; the wall time is what a user waits.
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

KINDS = ("fused", "keras", "fused_ema", "onepass")
RECIPE = {"train.optimizer": "adam", "train.learning_rate": 1e-3, "train.batch_size": 100,
          "train.n_train": 1000, "train.n_test": 1000}


def _use(kind: str):
    """Make the towers build `kind` of batch norm from now on."""
    import keras

    from pairzoo import layers
    from pairzoo.towers import blocks

    blocks.BatchNormalization = {"fused": layers.BatchNormalization,
                                 "keras": keras.layers.BatchNormalization,
                                 "fused_ema": _fused_ema_layer(),
                                 "onepass": _onepass_layer()}[kind]


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


def _onepass_layer():
    import tensorflow as tf

    from pairzoo.layers import BatchNormalization

    class OnePass(BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            if not (training and self.trainable) or not self._fusable(inputs, mask):
                return super().call(inputs, training=training, mask=mask)
            axes = list(range(len(inputs.shape) - 1))
            # a sample per channel as the shift keeps E[d^2] - E[d]^2 free of cancellation
            shift = tf.stop_gradient(inputs[(0,) * len(axes)])
            d = inputs - shift
            mean_d = tf.reduce_mean(d, axes)
            variance = tf.reduce_mean(tf.square(d), axes) - tf.square(mean_d)
            mean = mean_d + shift
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum
                                    + tf.stop_gradient(mean) * (1.0 - momentum))
            self.moving_variance.assign(self.moving_variance * momentum
                                        + tf.stop_gradient(variance) * (1.0 - momentum))
            scale = self.gamma * tf.math.rsqrt(variance + self.epsilon)
            return inputs * scale + (self.beta - mean * scale)

    return OnePass


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def later_epochs(model: str, epochs: int) -> dict:
    """One process, a trainer per kind, their epochs alternating."""
    import numpy as np
    import tensorflow as tf

    from pairzoo.config import apply_overrides
    from pairzoo.data import load_pairs
    from pairzoo.fastpath import CompiledTrainer, configure_threads
    from pairzoo.registry import get_preset

    preset = apply_overrides(get_preset(model), {**RECIPE, "train.epochs": 1})
    configure_threads(preset.model.family)
    train, test = load_pairs(1000, 1000, 0)
    trainers = {}
    for kind in KINDS:
        _use(kind)
        trainers[kind] = CompiledTrainer(preset, len(train), len(test))
        trainers[kind].reset(0, train, test)
    _use("fused")
    times = {kind: [] for kind in KINDS}
    for epoch in range(epochs + 2):  # a traced and a warm epoch first
        order = tf.constant(np.random.default_rng(epoch).permutation(1000), dtype=tf.int32)
        for kind, trainer in trainers.items():
            seconds = _timed(lambda t=trainer, o=order: t._epoch(o))
            if epoch >= 2:
                times[kind].append(seconds)
    return {kind: [statistics.median(s[i] for s in t) for i in (0, 1)]
            for kind, t in times.items()}


def first_epoch(model: str, kind: str, seed: int) -> dict:
    """A fresh process's first epoch: the trace and one epoch (and the test error after 3)."""
    import keras

    from pairzoo.training import train

    _use(kind)

    class EpochClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.marks = [(time.perf_counter(), time.process_time())]

        def on_epoch_end(self, epoch, logs=None):
            self.marks.append((time.perf_counter(), time.process_time()))

    clock = EpochClock()
    result = train(model, seed=seed, callbacks=[clock], loop="fast",
                   overrides={**RECIPE, "train.epochs": 3})
    (wall0, cpu0), (wall1, cpu1) = clock.marks[:2]
    return {"wall": wall1 - wall0, "cpu": cpu1 - cpu0, "test_error": result.metrics["test_error"]}


def _worker(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", *map(str, args)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3, help="fresh processes per kind")
    parser.add_argument("--epochs", type=int, default=8, help="later epochs timed per kind")
    parser.add_argument("--models", nargs="+", default=["siamese_fullyconv", "siamese_resnet"])
    parser.add_argument("--later-only", action="store_true", help="skip the first epochs")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        what, model, *rest = args.worker
        result = (later_epochs(model, int(rest[0])) if what == "later"
                  else first_epoch(model, rest[0], int(rest[1])))
        print(json.dumps(result))
        return
    print(f"load average at start {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    for model in args.models:
        later = _worker("later", model, args.epochs)
        for kind in KINDS:
            wall, cpu = later[kind]
            print(f"{model} {kind}: later epochs {wall:.3f} s wall, {cpu:.3f} s CPU "
                  f"(medians of {args.epochs}, alternating in one process)")
        for i, measure in enumerate(("wall", "CPU")):
            print(f"{model} later epochs, {measure}: keras / fused "
                  f"{later['keras'][i] / later['fused'][i]:.2f}x, fused / fused_ema "
                  f"{later['fused'][i] / later['fused_ema'][i]:.2f}x, keras / onepass "
                  f"{later['keras'][i] / later['onepass'][i]:.2f}x")
        if args.later_only:
            continue
        firsts = {kind: [] for kind in KINDS}
        for rep in range(args.reps):
            for kind in KINDS:  # alternating, a fresh process each
                firsts[kind].append(_worker("first", model, kind, rep))
        median = {kind: {m: statistics.median(r[m] for r in runs) for m in ("wall", "cpu")}
                  for kind, runs in firsts.items()}
        for kind in KINDS:
            errors = ", ".join(f"{r['test_error']:.1f}" for r in firsts[kind])
            print(f"{model} {kind}: first epoch (trace included) {median[kind]['wall']:.2f} s "
                  f"wall, {median[kind]['cpu']:.2f} s CPU (medians of {args.reps} fresh "
                  f"processes); test error % after 3 epochs, seeds 0-{args.reps - 1}: {errors}")
        for measure in ("wall", "cpu"):
            print(f"{model} first epoch, {measure}: keras / fused "
                  f"{median['keras'][measure] / median['fused'][measure]:.2f}x")
        print(f"load average after {model} {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
