"""The fast training loop (TensorFlow backend): one traced function per epoch, reused by runs.

Why not `model.fit`: on 1,000 pairs a run is ~300 tiny steps, and fit's per-step Python,
callbacks and per-run tracing (~1.5 s) cost more than the arithmetic. Here:

- a whole epoch (shuffled batches, forward, losses, backward, optimizer, running metrics and,
  unless the recipe turns it off, the test-set evaluation) is one `tf.function` call, so
  Python runs once per epoch;
- the trace is kept per architecture and recipe (`CompiledTrainer`, a bounded cache), and a new
  run only re-initialises state: the weights and seed-generator states of a freshly built model
  with the run's seed (so the first weights equal those `fit` would start from), the optimizer's
  slots, step counter and learning rate, the run's pairs, and a shuffle order drawn from the
  run's seed.

A reused trainer therefore gives exactly what a new one gives for the same seed. Optimizer,
losses and loss weights come from pairzoo.recipe, as fit's do, so results match `fit` in
distribution (not bit for bit: batch order and dropout streams differ).

Keras callbacks see a compiled model whose optimizer is the one training, and get the
epoch-level hooks (on_train_begin/end, on_epoch_begin/end) with fit's log names: EarlyStopping
stops the run, ReduceLROnPlateau and LearningRateScheduler change the rate, ModelCheckpoint,
CSVLogger, TensorBoard (update_freq="epoch") and BackupAndRestore work as under fit. Callbacks
that need batch hooks are sent to fit by pairzoo.training. A non-finite loss ends the epoch at
that batch and the run (TerminateOnNaN's rule).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from pairzoo.config import Preset
from pairzoo.data import PairSet
from pairzoo.models import build_model
from pairzoo.recipe import compile_model, loss_setup, make_optimizer

# Trainers kept per process. An experiment trains its cells one after another (and the
# dispatcher gives a worker runs of the model it last trained), so a few suffice; each holds a
# model, its optimizer and traced graphs (a few MB).
MAX_TRAINERS = 4


@dataclass
class FastFit:
    """What one run of the fast loop leaves: its history, where it stopped and why."""

    history: pd.DataFrame
    seconds: float
    diverged_at: int | None = None  # 1-based epoch whose loss became non-finite


def trainer_key(preset: Preset, n_train: int, n_test: int) -> str:
    """Architecture and recipe (the outputs follow from the model config) and data sizes."""
    recipe = dataclasses.asdict(preset.train)
    return json.dumps([dataclasses.asdict(preset.model), recipe, n_train, n_test],
                      sort_keys=True)


class CompiledTrainer:
    """A model, its optimizer and its traced epoch function, for one architecture and recipe."""

    def __init__(self, preset: Preset, n_train: int, n_test: int):
        self.preset = preset
        self.model = build_model(preset.model, name=preset.name)
        self.outputs = tuple(self.model.output_names)
        self.losses, self.loss_weights = loss_setup(preset.model)
        self.optimizer = make_optimizer(preset.train)
        self.optimizer.build(self.model.trainable_variables)
        # compiled with the optimizer that trains it: callbacks read and change
        # model.optimizer (its learning rate), ModelCheckpoint saves it with its state
        compile_model(self.model, preset, self.optimizer)
        self.batch_size = preset.train.batch_size
        self.evaluate_each_epoch = preset.train.eval_each_epoch
        # The run's pairs live in variables, so a new run feeds new data without retracing.
        self.train_x = tf.Variable(tf.zeros((n_train, 2, 14, 14)), trainable=False)
        self.test_x = tf.Variable(tf.zeros((n_test, 2, 14, 14)), trainable=False)
        self.train_y = {k: tf.Variable(tf.zeros(_target_shape(k, n_train)), trainable=False)
                        for k in self.outputs}
        self.test_y = {k: tf.Variable(tf.zeros(_target_shape(k, n_test)), trainable=False)
                       for k in self.outputs}
        # autograph off: the loop is written as tf.while_loop below. Autograph would convert
        # every function the model calls too: siamese_argmax traced in 0.91 s with it, 0.37 s
        # without (benchmarks/results/solo-profile.md), for the same graph (the weights come
        # out bit for bit equal)
        self._epoch = tf.function(self._epoch_graph, autograph=False)

    # -- per run ---------------------------------------------------------------------------

    def reset(self, seed: int, train: PairSet, test: PairSet) -> None:
        seed_keeping_traces(seed)
        fresh = build_model(self.preset.model, name=self.preset.name)
        for mine, theirs in zip(self.model.variables, fresh.variables, strict=True):
            mine.assign(theirs)  # weights, BN statistics and dropout seed states
        for variable in self.optimizer.variables:
            variable.assign(tf.zeros_like(variable))  # step counter, moments, EMA
        if not isinstance(self.optimizer._learning_rate,
                          keras.optimizers.schedules.LearningRateSchedule):
            # the recipe's rate again: a callback may have changed it in the last run
            self.optimizer.learning_rate = self.preset.train.learning_rate
        self.model.stop_training = False
        self.model._initial_epoch = None  # set by BackupAndRestore when it resumes
        self.train_x.assign(train.pairs)
        self.test_x.assign(test.pairs)
        for name, target in train.targets(self.outputs).items():
            self.train_y[name].assign(target.astype("float32"))
        for name, target in test.targets(self.outputs).items():
            self.test_y[name].assign(target.astype("float32"))

    def fit(self, seed: int, epochs: int, callbacks=None) -> FastFit:
        """Train up to `epochs` epochs (callbacks may stop it early, a non-finite loss does)."""
        start = time.perf_counter()
        rng = shuffle_rng(seed)
        n = int(self.train_x.shape[0])
        callbacks = keras.callbacks.CallbackList(list(callbacks or []), model=self.model,
                                                 epochs=epochs)
        callbacks.on_train_begin()
        # BackupAndRestore resumes an interrupted run from its last finished epoch
        first = self.model._initial_epoch or 0
        rows, logs, diverged_at = [], {}, None
        for epoch in range(epochs):
            # drawn for every epoch, skipped ones too: a resumed run keeps its shuffle order
            order = tf.constant(rng.permutation(n), dtype=tf.int32)
            if epoch < first:
                continue
            callbacks.on_epoch_begin(epoch)
            outcome = self._epoch(order)
            if not bool(outcome.pop("finite")):
                diverged_at = epoch + 1
                break
            logs = {k: float(v) for k, v in outcome.items()}
            rows.append(logs)
            callbacks.on_epoch_end(epoch, logs)
            if self.model.stop_training:
                break
        if diverged_at is None:
            # as fit does: with EMA on, the averaged weights become the model's
            self.optimizer.finalize_variable_values(self.model.trainable_variables)
        callbacks.on_train_end(logs)
        return FastFit(pd.DataFrame(rows), time.perf_counter() - start, diverged_at)

    def state(self) -> TrainedState:
        """A copy of the trained weights and optimizer state, which outlives this trainer's
        next run (RunResult materialises a model from it when asked)."""
        return TrainedState([v.numpy() for v in self.model.variables],
                            [v.numpy() for v in self.optimizer.variables])

    # -- traced ----------------------------------------------------------------------------

    def _forward(self, x, targets):
        """A training step's forward pass: predictions, total loss, loss per output (a
        distilling trainer adds its teachers' term here)."""
        predictions = self.model(x, training=True)
        total, per_output = self._losses(targets, predictions)
        return predictions, total, per_output

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

        def more(start, sums, finite):
            return tf.logical_and(start < n, finite)

        def step(start, sums, finite):
            batch = self._batch_forward(order[start:start + self.batch_size])
            # TerminateOnNaN's rule: stop at the batch whose loss is not finite, before its
            # update spreads NaN through every weight
            finite = tf.math.is_finite(batch.total)
            sums = tf.cond(finite, lambda: sums + self._batch_update(batch), lambda: sums)
            return start + self.batch_size, sums, finite

        # running sums as one vector: the loop carries tensors, not dict items
        start = (tf.constant(0), tf.zeros(len(self._log_names())), tf.constant(True))
        _, sums, finite = tf.while_loop(more, step, start)
        return self._epoch_logs(sums, n, finite)

    def _log_names(self) -> list[str]:
        """The epoch's running figures, in the order of the sums vector."""
        return ["loss", *(f"{k}_loss" for k in self.losses),
                *(f"{k}_accuracy" for k in self.outputs)]

    def _batch_forward(self, index) -> _Batch:
        """One batch's forward pass under a gradient tape."""
        x = tf.gather(self.train_x, index)
        y = {k: tf.gather(v, index) for k, v in self.train_y.items()}
        with tf.GradientTape() as tape:
            predictions, total, per_output = self._forward(x, y)
        return _Batch(index, y, tape, predictions, total, per_output)

    def _batch_update(self, batch: _Batch):
        """The optimizer's step from `batch`; returns its share of the epoch's running sums."""
        weights = self.model.trainable_variables
        self.optimizer.apply(batch.tape.gradient(batch.total, weights), weights)
        size = tf.cast(tf.shape(batch.index)[0], tf.float32)
        correct = self._correct(batch.targets, batch.predictions)
        # losses weighted by batch size: fit's running mean of batch losses
        return tf.stack([batch.total * size, *(batch.per_output[k] * size for k in self.losses),
                         *(correct[k] for k in self.outputs)])

    def _epoch_logs(self, sums, n, finite) -> dict:
        epoch = sums / tf.cast(n, tf.float32)
        logs = {name: epoch[i] for i, name in enumerate(self._log_names())}
        logs["finite"] = finite
        if self.evaluate_each_epoch:
            logs.update(self._evaluation())
        return logs

    def _evaluation(self):
        """The test set in one batch, in inference mode: fit's validation_data columns."""
        predictions = self.model(self.test_x, training=False)
        total, per_output = self._losses(self.test_y, predictions)
        n_test = tf.cast(tf.shape(self.test_x)[0], tf.float32)
        logs = {"val_loss": total}
        for k, v in per_output.items():
            logs[f"val_{k}_loss"] = v
        for k, v in self._correct(self.test_y, predictions).items():
            logs[f"val_{k}_accuracy"] = v / n_test
        return logs


@dataclass
class _Batch:
    """A training batch between its forward pass and its update."""

    index: tf.Tensor
    targets: dict
    tape: tf.GradientTape
    predictions: dict
    total: tf.Tensor
    per_output: dict


@dataclass
class TrainedState:
    """Model variables (weights, batch-norm statistics, seed states) and optimizer variables,
    in the order a freshly built model of the same config and its optimizer hold them."""

    weights: list[np.ndarray]
    optimizer: list[np.ndarray]

    def materialise(self, preset: Preset) -> keras.Model:
        """A new compiled model holding this state: what `fit` would have left."""
        model = build_model(preset.model, name=preset.name)
        for variable, value in zip(model.variables, self.weights, strict=True):
            variable.assign(value)
        optimizer = make_optimizer(preset.train)
        optimizer.build(model.trainable_variables)
        for variable, value in zip(optimizer.variables, self.optimizer, strict=True):
            variable.assign(value)
        return compile_model(model, preset, optimizer)


def seed_keeping_traces(seed: int) -> None:
    """What `keras.utils.set_random_seed` seeds (Python's and NumPy's generators, Keras's global
    seed and seed generator), but not TensorFlow's global seed.

    `tf.random.set_seed` clears TensorFlow's kernel and function caches (to restart stateful
    random ops), so the next call of a traced epoch is instantiated and optimised anew: 0.8 s
    per run here, against 0.1 s for an epoch of 1,000 pairs. The traced graphs hold no
    stateful random op: Keras's are stateless, their seeds drawn from Python's generator and
    Keras's seed generators, which are seeded here as Keras seeds them; the batch order comes
    from `shuffle_rng`. So runs are bit for bit what they were with `set_random_seed`
    (tests/test_training.py compares the weights it gives and a run under other TF seeds).
    """
    import random

    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


def shuffle_rng(seed: int) -> np.random.Generator:
    """The generator of a run's batch orders (one permutation drawn per epoch)."""
    return np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))


def _target_shape(output: str, n: int) -> tuple[int, ...]:
    return (n, 1) if output == "compare" else (n,)


_TRAINERS: collections.OrderedDict[str, CompiledTrainer] = collections.OrderedDict()


def trainer_for(preset: Preset, n_train: int, n_test: int,
                trainer_class: type[CompiledTrainer] | None = None) -> CompiledTrainer:
    """The cached trainer of this architecture and recipe, or a new one of `trainer_class`
    (a subclass for what the plain loop does not do: pairzoo.distillation's, which builds on
    this module); least recently used trainers beyond MAX_TRAINERS are dropped."""
    key = trainer_key(preset, n_train, n_test)
    if key in _TRAINERS:
        _TRAINERS.move_to_end(key)
    else:
        _TRAINERS[key] = (trainer_class or CompiledTrainer)(preset, n_train, n_test)
        while len(_TRAINERS) > MAX_TRAINERS:
            _TRAINERS.popitem(last=False)
    return _TRAINERS[key]
