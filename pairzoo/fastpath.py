"""The fast training path (TensorFlow backend): one traced function per epoch, reused by runs.

Why not `model.fit`: on 1,000 pairs a run is ~300 tiny steps, and fit's per-step Python,
callbacks and per-run tracing (~1.5 s) cost more than the arithmetic. Here:

- a whole epoch (shuffled batches, forward, losses, backward, optimizer, running metrics and the
  test-set evaluation) is one `tf.function` call, so Python runs once per epoch;
- the trace is kept per architecture and recipe (`CompiledTrainer`), and a new run only
  re-initialises state: the weights and seed-generator states of a freshly built model with the
  run's seed (so the first weights equal those `fit` would start from), zeroed optimizer slots
  and step counter, the run's pairs, and a shuffle order drawn from the run's seed.

A reused trainer therefore gives exactly what a new one gives for the same seed. Losses, loss
weights and optimizer are the same objects `fit` would use (`pairzoo.training`), so results
match `fit` in distribution (not bit for bit: batch order and dropout streams differ).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from pairzoo.config import Preset
from pairzoo.data import PairSet
from pairzoo.models import build_model


def configure_threads(family: str) -> bool:
    """Pick TF's thread pools once per process, before TensorFlow runs its first op.

    Siamese models use intra-op 1 / inter-op 2, the two towers then running side by side; a
    single network gets both pools at 2. Measured on a quiet machine (second run of a process,
    benchmarks/results/training.md): siamese_fullyconv 1,2 5.21 s, 2,2 5.64, 2,1 6.61, 1,1
    8.11; two_channel_baseline 2,2 2.16 s, 2,1 2.38, 1,2 2.96, 1,1 3.35. Returns False when TF
    was already initialised (the settings are process-wide and can no longer change).
    PAIRZOO_TF_THREADS="intra,inter" overrides the choice (the benchmarks compare with it).
    """
    intra, inter = (1, 2) if family == "siamese" else (2, 2)
    if os.environ.get("PAIRZOO_TF_THREADS"):
        intra, inter = (int(n) for n in os.environ["PAIRZOO_TF_THREADS"].split(","))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        return False
    return True


def _trainer_key(preset: Preset, n_train: int, n_test: int) -> str:
    """Architecture and recipe (the outputs follow from the model config) and data sizes."""
    recipe = dataclasses.asdict(preset.train)
    return json.dumps([dataclasses.asdict(preset.model), recipe, n_train, n_test],
                      sort_keys=True)


class CompiledTrainer:
    """A model, its optimizer and its traced epoch function, for one architecture and recipe."""

    def __init__(self, preset: Preset, n_train: int, n_test: int):
        from pairzoo.training import loss_setup, make_optimizer  # one source of truth

        self.preset = preset
        self.model = build_model(preset.model, name=preset.name)
        self.outputs = tuple(self.model.output_names)
        self.losses, self.loss_weights = loss_setup(preset.model)
        self.optimizer = make_optimizer(preset.train)
        self.optimizer.build(self.model.trainable_variables)
        self.batch_size = preset.train.batch_size
        # The run's pairs live in variables, so a new run feeds new data without retracing.
        self.train_x = tf.Variable(tf.zeros((n_train, 2, 14, 14)), trainable=False)
        self.test_x = tf.Variable(tf.zeros((n_test, 2, 14, 14)), trainable=False)
        self.train_y = {k: tf.Variable(tf.zeros(_target_shape(k, n_train)), trainable=False)
                        for k in self.outputs}
        self.test_y = {k: tf.Variable(tf.zeros(_target_shape(k, n_test)), trainable=False)
                       for k in self.outputs}
        self._epoch = tf.function(self._epoch_graph)
        self.generation = 0  # bumped by every reset: tells a run's model is no longer its own

    # -- per run ---------------------------------------------------------------------------

    def reset(self, seed: int, train: PairSet, test: PairSet) -> None:
        self.generation += 1
        keras.utils.set_random_seed(seed)
        fresh = build_model(self.preset.model, name=self.preset.name)
        for mine, theirs in zip(self.model.variables, fresh.variables, strict=True):
            mine.assign(theirs)  # weights, BN statistics and dropout seed states
        for variable in self.optimizer.variables:
            if not variable.path.endswith("learning_rate"):
                variable.assign(tf.zeros_like(variable))  # step counter, moments
        self.train_x.assign(train.pairs)
        self.test_x.assign(test.pairs)
        for name, target in train.targets(self.outputs).items():
            self.train_y[name].assign(target.astype("float32"))
        for name, target in test.targets(self.outputs).items():
            self.test_y[name].assign(target.astype("float32"))

    def fit(self, seed: int, epochs: int, callbacks=None) -> pd.DataFrame:
        """Train `epochs` epochs; the history has fit's column names."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
        n = int(self.train_x.shape[0])
        callbacks = keras.callbacks.CallbackList(list(callbacks or []), model=self.model)
        callbacks.on_train_begin()
        rows = []
        for epoch in range(epochs):
            order = tf.constant(rng.permutation(n), dtype=tf.int32)
            logs = {k: float(v) for k, v in self._epoch(order).items()}
            rows.append(logs)
            callbacks.on_epoch_end(epoch, logs)
        # as fit does: with EMA on, the averaged weights become the model's
        self.optimizer.finalize_variable_values(self.model.trainable_variables)
        callbacks.on_train_end()
        return pd.DataFrame(rows)

    # -- traced ----------------------------------------------------------------------------

    def _losses(self, targets, predictions):
        per_output = {k: fn(targets[k], predictions[k]) for k, fn in self.losses.items()}
        total = tf.add_n([self.loss_weights[k] * v for k, v in per_output.items()])
        return total, per_output

    def _correct(self, targets, predictions):
        """Correct predictions per output in this batch (sums, so epochs average exactly)."""
        correct = {}
        for k in self.outputs:
            if k == "compare":
                hit = tf.equal(tf.cast(predictions[k] > 0.5, tf.float32), targets[k])
            else:
                hit = tf.equal(tf.argmax(predictions[k], -1, output_type=tf.int32),
                               tf.cast(targets[k], tf.int32))
            correct[k] = tf.reduce_sum(tf.cast(hit, tf.float32))
        return correct

    def _epoch_graph(self, order):
        n = tf.shape(order)[0]
        weights = self.model.trainable_variables
        # running sums as one vector (autograph carries tensors, not dict items, through loops)
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
            # losses weighted by batch size: fit's running mean of batch losses
            sums += tf.stack([total * size, *(per_output[k] * size for k in self.losses),
                              *(correct[k] for k in self.outputs)])
        epoch = sums / tf.cast(n, tf.float32)
        logs = {name: epoch[i] for i, name in enumerate(names)}
        # the test set in one batch, in inference mode: fit's validation_data columns
        predictions = self.model(self.test_x, training=False)
        total, per_output = self._losses(self.test_y, predictions)
        n_test = tf.cast(tf.shape(self.test_x)[0], tf.float32)
        logs["val_loss"] = total
        for k, v in per_output.items():
            logs[f"val_{k}_loss"] = v
        for k, v in self._correct(self.test_y, predictions).items():
            logs[f"val_{k}_accuracy"] = v / n_test
        return logs


def _target_shape(output: str, n: int) -> tuple[int, ...]:
    return (n, 1) if output == "compare" else (n,)


_TRAINERS: dict[str, CompiledTrainer] = {}


def fast_fit(preset: Preset, train: PairSet, test: PairSet, seed: int,
             callbacks=None) -> tuple[CompiledTrainer, pd.DataFrame, float]:
    """Train with a (possibly reused) compiled trainer: (trainer, history, seconds).

    The trainer's model is re-initialised by the next run of the same architecture.
    """
    configure_threads(preset.model.family)
    key = _trainer_key(preset, len(train), len(test))
    trainer = _TRAINERS.get(key)
    if trainer is None:
        trainer = _TRAINERS[key] = CompiledTrainer(preset, len(train), len(test))
    trainer.reset(seed, train, test)
    start = time.perf_counter()
    history = trainer.fit(seed, preset.train.epochs, callbacks)
    return trainer, history, time.perf_counter() - start
