"""K runs of one preset trained side by side in one traced epoch (TensorFlow backend).

Why: these models are small, so one run keeps neither core busy (a convolution on a batch of
100 14×14 digits is over before a second thread pays). K independent models in one graph let
TensorFlow's executor run one model's ops while another's wait: in one process, a stack of 5
trained 1.12-1.29x sooner per run than runs one after another (benchmarks/results/stacked.md).
Two worker processes do as well or better for a whole plan (they import and trace side by
side), so stacks serve the runs that train in this process.

Each member is a `pairzoo.fastpath.CompiledTrainer` and stays the run it is alone: the
run's seed gives its initial weights, dropout streams and shuffle order, its own pairs live in
its own variables, and its own optimizer steps it. Nothing is shared but the graph, so a
member computes exactly the ops a solo run computes, and its weights come out the same.

A member whose loss becomes non-finite is diverged from that epoch on; the others go on (its
ops keep running in the graph until the stack ends, on weights nobody reads). A member that a
callback stops (EarlyStopping) is finished there: its trained state and test metrics are taken
at that epoch, before the next epoch moves its weights.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from pairzoo.config import Preset
from pairzoo.data import PairSet
from pairzoo.errors import DivergedError
from pairzoo.fastpath import CompiledTrainer, FastFit, TrainedState, shuffle_rng, trainer_key
from pairzoo.runs import RunSpec


@dataclass
class Member:
    """What one member leaves when it finishes: its fit, a copy of its trained state, and its
    live model, which holds that state only until the stack trains on (on_finished's time)."""

    fit: FastFit
    state: TrainedState | None  # None when diverged
    model: keras.Model | None = None  # the live model, valid until the stack's next run


class StackedTrainer:
    """`size` CompiledTrainers of one preset and data size, and one traced epoch over all."""

    def __init__(self, preset: Preset, n_train: int, n_test: int, size: int):
        if preset.train.teacher:
            raise ValueError("a distilling preset trains alone (its teachers come first)")
        self.preset, self.size = preset, size
        self.members = [CompiledTrainer(preset, n_train, n_test) for _ in range(size)]
        self._epoch = tf.function(self._epoch_graph, autograph=False)  # as fastpath's

    def reset(self, runs: list[tuple[int, PairSet, PairSet]]) -> None:
        """(seed, train pairs, test pairs) per member, in member order."""
        if len(runs) != self.size:
            raise ValueError(f"a stack of {self.size} takes {self.size} runs, got {len(runs)}")
        for member, (seed, train, test) in zip(self.members, runs, strict=True):
            member.reset(seed, train, test)

    def fit(self, seeds: list[int], epochs: int, callbacks=None,
            on_finished=None) -> list[Member]:
        """Train every member up to `epochs` epochs. `callbacks` (one list per member, or None)
        get the epoch-level hooks, as in the fast loop. `on_finished(k, member)` is called the
        moment member k is finished (stopped, diverged or at the end), while its live model
        still holds its final weights: the place to evaluate it."""
        start = time.perf_counter()
        rngs = [shuffle_rng(seed) for seed in seeds]
        n = int(self.members[0].train_x.shape[0])
        lists = [keras.callbacks.CallbackList(list(cbs or []), model=m.model, epochs=epochs)
                 for m, cbs in zip(self.members, callbacks or [None] * self.size, strict=True)]
        for callback_list in lists:
            callback_list.on_train_begin()
        rows: list[list[dict]] = [[] for _ in self.members]
        done: dict[int, Member] = {}

        def finish(k: int, diverged_at: int | None = None) -> None:
            member = self.members[k]
            history = pd.DataFrame(rows[k])
            fit = FastFit(history, time.perf_counter() - start, diverged_at)
            if diverged_at is None:
                member.optimizer.finalize_variable_values(member.model.trainable_variables)
                done[k] = Member(fit, member.state(), member.model)
            else:
                done[k] = Member(fit, None)
            lists[k].on_train_end(rows[k][-1] if rows[k] else {})
            if on_finished is not None:
                on_finished(k, done[k])

        for epoch in range(epochs):
            # every member draws its order every epoch, as alone: its batch order is its own
            orders = tf.constant(np.stack([rng.permutation(n) for rng in rngs]), tf.int32)
            for k, callback_list in enumerate(lists):
                if k not in done:
                    callback_list.on_epoch_begin(epoch)
            outcomes = self._epoch(orders)
            for k, outcome in enumerate(outcomes):
                if k in done:
                    continue
                if not bool(outcome.pop("finite")):
                    finish(k, diverged_at=epoch + 1)
                    continue
                logs = {key: float(value) for key, value in outcome.items()}
                rows[k].append(logs)
                lists[k].on_epoch_end(epoch, logs)
                if self.members[k].model.stop_training:
                    finish(k)
            if len(done) == self.size:
                break
        for k in range(self.size):
            if k not in done:
                finish(k)
        return [done[k] for k in range(self.size)]

    def _epoch_graph(self, orders):
        """One epoch of every member: the same batch loop as CompiledTrainer's, each step
        advancing every member by one batch of its own order."""
        n = tf.shape(orders)[1]
        batch_size = self.members[0].batch_size

        def step(start, sums, finite):
            steps, oks = [], []
            for k, member in enumerate(self.members):
                batch = member._batch_forward(orders[k, start:start + batch_size])
                # a non-finite member is diverged; its update runs anyway (its weights are
                # no longer read), so that the others need no branch
                oks.append(tf.math.is_finite(batch.total))
                steps.append(member._batch_update(batch))
            return start + batch_size, sums + tf.stack(steps), finite & tf.stack(oks)

        width = len(self.members[0]._log_names())
        start = (tf.constant(0), tf.zeros((self.size, width)), tf.ones((self.size,), tf.bool))
        _, sums, finite = tf.while_loop(lambda start, *_: start < n, step, start)
        return [member._epoch_logs(sums[k], n, finite[k])
                for k, member in enumerate(self.members)]


# --- runs --------------------------------------------------------------------------------------

# Stacks kept per process (a cell's stacks share one, its remainder another); each holds K models
# and their traced epoch.
MAX_STACKS = 2
_STACKS: collections.OrderedDict[tuple, StackedTrainer] = collections.OrderedDict()


def stackable(spec: RunSpec) -> bool:
    """Whether a run can train in a stack: the fast loop's (TensorFlow backend) plain runs
    (RunSpec.stackable)."""
    return keras.backend.backend() == "tensorflow" and spec.stackable


def stack_for(preset: Preset, n_train: int, n_test: int, size: int) -> StackedTrainer:
    """The cached stack of this architecture, recipe, data size and size, or a new one."""
    key = (trainer_key(preset, n_train, n_test), size)
    if key in _STACKS:
        _STACKS.move_to_end(key)
    else:
        _STACKS[key] = StackedTrainer(preset, n_train, n_test, size)
        while len(_STACKS) > MAX_STACKS:
            _STACKS.popitem(last=False)
    return _STACKS[key]


def train_together(specs: list[RunSpec], *, device: str | None = None,
                   callbacks=None) -> list:
    """Train runs of one preset in one stack; per run, in order, what `training.train` gives
    for it alone (a RunResult) or would raise (a DivergedError). Each result's train_seconds is
    its share of the stack's training time (the time over the stack's size), and its metrics
    record the stack's size (`stacked`). `callbacks`: epoch-level Keras callbacks per run."""
    from pairzoo.evaluation import device_scope, evaluate
    from pairzoo.models import count_trainable_params
    from pairzoo.training import check_finite, diverged_error

    preset = specs[0].preset
    if any(spec.preset != preset or not stackable(spec) for spec in specs):
        raise ValueError("a stack takes plain fast-loop runs of one preset")
    recipe = preset.train
    pairs = [spec.pairs() for spec in specs]
    outcomes: list = [None] * len(specs)
    evaluating = 0.0

    def evaluated(k: int, member: Member) -> None:
        nonlocal evaluating
        if member.state is None:
            outcomes[k] = diverged_error(specs[k], member.fit.diverged_at)
            return
        clock = time.perf_counter()
        try:
            check_finite(member.model, specs[k])
        except DivergedError as error:
            outcomes[k] = error
            return
        metrics = evaluate(member.model, pairs[k][1], protocol=recipe.eval_protocol,
                           batch_size=recipe.batch_size)
        outcomes[k] = (metrics, member)
        evaluating += time.perf_counter() - clock

    with device_scope(device):
        trainer = stack_for(preset, len(pairs[0][0]), len(pairs[0][1]), len(specs))
        trainer.reset([(spec.seed, *run_pairs) for spec, run_pairs in zip(specs, pairs,
                                                                           strict=True)])
        start = time.perf_counter()
        trainer.fit([spec.seed for spec in specs], recipe.epochs, callbacks, evaluated)
        share = (time.perf_counter() - start - evaluating) / len(specs)
    params = count_trainable_params(trainer.members[0].model)
    from pairzoo.training import RunResult

    results = []
    for spec, (train, test), outcome in zip(specs, pairs, outcomes, strict=True):
        if isinstance(outcome, DivergedError):
            results.append(outcome)
            continue
        metrics, member = outcome
        metrics.update(params=params, train_seconds=round(share, 3), stacked=len(specs))
        history = member.fit.history
        history.insert(0, "epoch", np.arange(1, len(history) + 1))
        pools = {"train_pool": train.source, "test_pool": test.source}
        results.append(RunResult(spec, history, metrics, pools, "fast", _state=member.state))
    return results
