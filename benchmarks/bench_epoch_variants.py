"""Candidate changes to the fast path's traced epoch, measured side by side before adopting any.

    python benchmarks/bench_epoch_variants.py [--models siamese_fullyconv ...] [--epochs 8]

Each variant is a scratch subclass of pairzoo.fastpath.CompiledTrainer whose `_epoch_graph`
differs only where named; all variants of a model are built in one process (same thread
pools) and their epochs alternate, so every ratio is taken side by side:
- current: the fast path as it is (the 1,000 test pairs evaluated in one batch each epoch);
- eval_chunks_N: the test pairs evaluated in chunks of N inside the traced epoch (the same
  sums: losses weighted by chunk size, correct counts), so activations stay cache-sized;
- no_eval: no per-epoch test evaluation at all (what a run without a learning curve costs).
Prints the median epoch time per variant (after a traced and a warm epoch) as wall time and
as the process's CPU time (the steadier measure on a shared machine), and the test loss of
the last epoch, so a variant that computes something else shows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)

RECIPE = {"train.optimizer": "adam", "train.learning_rate": 1e-3, "train.batch_size": 100,
          "train.n_train": 1000, "train.n_test": 1000, "train.epochs": 1}


def variant_class(evaluation: str | int):
    """evaluation: "whole" (as now), an int chunk size, or "none"."""
    import tensorflow as tf

    from pairzoo.fastpath import CompiledTrainer

    class Variant(CompiledTrainer):
        def _epoch_graph(self, order):
            n = tf.shape(order)[0]
            weights = self.model.trainable_variables
            names = ["loss", *(f"{k}_loss" for k in self.losses),
                     *(f"{k}_accuracy" for k in self.outputs)]
            sums = tf.zeros(len(names))
            for start in tf.range(0, n, self.batch_size):
                index = order[start:start + self.batch_size]
                x = tf.gather(self.train_x, index)
                y = {k: tf.gather(v, index) for k, v in self.train_y.items()}
                with tf.GradientTape() as tape:
                    predictions = self.model(x, training=True)
                    total, per_output = self._losses(y, predictions)
                self.optimizer.apply(tape.gradient(total, weights), weights)
                size = tf.cast(tf.shape(index)[0], tf.float32)
                correct = self._correct(y, predictions)
                sums += tf.stack([total * size, *(per_output[k] * size for k in self.losses),
                                  *(correct[k] for k in self.outputs)])
            epoch = sums / tf.cast(n, tf.float32)
            logs = {name: epoch[i] for i, name in enumerate(names)}
            if evaluation == "none":
                return logs
            test_names = ["val_loss", *(f"val_{k}_loss" for k in self.losses),
                          *(f"val_{k}_accuracy" for k in self.outputs)]
            n_test = int(self.test_x.shape[0])
            chunk = n_test if evaluation == "whole" else int(evaluation)
            test_sums = tf.zeros(len(test_names))
            for start in range(0, n_test, chunk):  # unrolled: a handful of static slices
                stop = min(start + chunk, n_test)
                predictions = self.model(self.test_x[start:stop], training=False)
                targets = {k: v[start:stop] for k, v in self.test_y.items()}
                total, per_output = self._losses(targets, predictions)
                correct = self._correct(targets, predictions)
                size = float(stop - start)
                test_sums += tf.stack([total * size, *(per_output[k] * size
                                                       for k in self.losses),
                                       *(correct[k] for k in self.outputs)])
            test = test_sums / float(n_test)
            logs.update({name: test[i] for i, name in enumerate(test_names)})
            return logs

    return Variant


def measure(model: str, variants: list, epochs: int) -> dict[str, dict]:
    import numpy as np
    import tensorflow as tf

    from pairzoo.config import apply_overrides
    from pairzoo.data import load_pairs
    from pairzoo.fastpath import configure_threads
    from pairzoo.registry import get_preset

    preset = apply_overrides(get_preset(model), RECIPE)
    configure_threads(preset.model.family)
    train, test = load_pairs(1000, 1000, 0)
    trainers = {}
    for evaluation in variants:
        trainer = variant_class(evaluation)(preset, len(train), len(test))
        trainer.reset(0, train, test)
        trainers[str(evaluation)] = trainer
    times = {label: [] for label in trainers}
    last = {}
    for epoch in range(epochs + 2):  # a traced and a warm epoch first
        order = tf.constant(np.random.default_rng(epoch).permutation(1000), dtype=tf.int32)
        for label, trainer in trainers.items():
            wall, cpu = time.perf_counter(), time.process_time()
            logs = trainer._epoch(order)
            if epoch >= 2:
                times[label].append((time.perf_counter() - wall, time.process_time() - cpu))
            last[label] = float(logs.get("val_loss", float("nan")))
    return {label: {"epoch": statistics.median(w for w, _ in t),
                    "cpu": statistics.median(c for _, c in t), "val_loss": last[label]}
            for label, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["siamese_fullyconv", "siamese_resnet",
                                                        "siamese_argmax"])
    parser.add_argument("--chunks", nargs="+", type=int, default=[250, 100])
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    print(f"load average at start {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    for model in args.models:
        result = measure(model, ["whole", *args.chunks, "none"], args.epochs)
        base = result["whole"]
        for label, figures in result.items():
            name = {"whole": "current", "none": "no_eval"}.get(label, f"eval_chunks_{label}")
            print(f"{model} {name}: epoch {figures['epoch']:.3f} s wall, {figures['cpu']:.3f} s "
                  f"CPU (medians of {args.epochs}): {base['epoch'] / figures['epoch']:.2f}x "
                  f"current (wall), {base['cpu'] / figures['cpu']:.2f}x (CPU); last val_loss "
                  f"{figures['val_loss']:.6f}")
        print(f"load average after {model} {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
