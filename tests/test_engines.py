"""Engines: where an experiment's runs train (this process, a local pool, Ray).

The dispatcher's logic (retries, affinity, twins) runs against an in-memory backend in
milliseconds; the pool runs real worker processes with a picklable fake trainer; the Ray tests
(in test_ray.py) start a real local instance.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from pairzoo.errors import PairzooError
from pairzoo.experiments.dispatch import Dispatcher, WorkerDied
from pairzoo.experiments.engines import make_dispatcher
from pairzoo.experiments.plan import plan_table
from pairzoo.experiments.runner import execute, run_experiment, train_row
from pairzoo.experiments.spec import spec_from_dict
from pairzoo.experiments.store import ResultsStore

TINY = {"train.epochs": 1, "train.n_train": 100, "train.n_test": 100}


def tiny_spec(runs: int = 2):
    return spec_from_dict({"experiment": {"name": "tiny", "runs": runs,
                                          "models": ["siamese_argmax", "two_channel_baseline"]},
                           "overrides": TINY})


def fake_result(run, *, device, callbacks=None):
    """A picklable stand-in for pairzoo.training.train (worker processes import it by name)."""
    error = 10 + run.seed + len(run.preset.name) / 100
    history = pd.DataFrame({"epoch": [1], "loss": [0.5], "val_loss": [0.6]})
    metrics = {"test_error": error, "test_accuracy": 1 - error / 100, "params": 1,
               "train_seconds": 0.0, "pid": os.getpid()}
    return SimpleNamespace(metrics=metrics, history=history, data={})


def dies_once(run, **kwargs):
    """Kills its own worker process the first time each run is tried (a marker file per
    seed and model remembers the first try across processes)."""
    marker = Path(os.environ["PAIRZOO_TEST_MARKERS"]) / f"{run.preset.name}-{run.seed}"
    if not marker.exists():
        marker.touch()
        os._exit(1)
    return fake_result(run, **kwargs)


class MemoryBackend:
    """Runs each submitted run when it is waited for; `dies(run, attempt)` kills the worker."""

    def __init__(self, workers: int, dies=lambda run, attempt: False):
        self.workers, self.dies = workers, dies
        self.log: list[tuple[int, str, int]] = []  # (slot, model, seed) in the order run
        self.restarts, self.started, self.stopped = 0, 0, 0
        self._handles: dict[int, tuple[int, object]] = {}
        self._attempts: dict[str, int] = {}
        self._ids = itertools.count()

    def start(self):
        self.started += 1

    def stop(self):
        self.stopped += 1

    def submit(self, slot, run):
        handle = next(self._ids)
        self._handles[handle] = (slot, run)
        return handle

    def wait_any(self, handles):
        handle = handles[0]
        slot, run = self._handles.pop(handle)
        self._attempts[run.run_id] = attempt = self._attempts.get(run.run_id, 0) + 1
        if self.dies(run, attempt):
            return handle, WorkerDied("killed")
        self.log.append((slot, run.model, run.seed))
        return handle, train_row(run, None, fake_result)

    def restart(self, slot):
        self.restarts += 1


def stored(store: ResultsStore) -> dict[str, dict]:
    return {row["run_id"]: row for row in ResultsStore(store.path).rows()}


def test_a_dead_workers_run_is_retried_and_stored(tmp_path):
    store = ResultsStore(tmp_path / "runs.jsonl")
    backend = MemoryBackend(2, dies=lambda run, attempt: run.seed == 1 and attempt == 1)
    plan = plan_table(tiny_spec())
    with Dispatcher(backend) as dispatcher:
        assert execute(plan, store, title="tiny", dispatcher=dispatcher) == 4
    assert backend.restarts == 2 and backend.started == 1 and backend.stopped == 1
    assert set(stored(store)) == {run.run_id for run in plan}


def test_a_run_that_always_kills_its_worker_is_reported_after_the_others_are_stored(tmp_path):
    store = ResultsStore(tmp_path / "runs.jsonl")
    backend = MemoryBackend(2, dies=lambda run, attempt: run.model == "siamese_argmax"
                            and run.seed == 0)
    plan = plan_table(tiny_spec())
    with (pytest.raises(PairzooError, match=r"1 run\(s\) lost their worker 3 times.*again"),
          Dispatcher(backend, retries=2) as dispatcher):
        execute(plan, store, title="tiny", dispatcher=dispatcher)
    assert len(stored(store)) == 3  # every other run is in the store
    assert backend.stopped == 1


def test_workers_keep_their_architecture_and_twins_train_once(tmp_path):
    store = ResultsStore(tmp_path / "runs.jsonl")
    backend = MemoryBackend(2)
    plan = plan_table(tiny_spec(runs=3))
    interleaved = [plan[i] for i in (0, 3, 1, 4, 2, 5)]  # models alternate in the queue
    twin = plan_table(tiny_spec(runs=3))[0]  # the same run (same id) planned twice
    with Dispatcher(backend) as dispatcher:
        execute([*interleaved, twin], store, title="tiny", dispatcher=dispatcher)
    assert len(backend.log) == 6 and len(stored(store)) == 6
    by_slot = {}
    for slot, model, _ in backend.log:
        by_slot.setdefault(slot, []).append(model)
    # each worker changes architecture at most once, though the queue alternated them
    assert all(sum(a != b for a, b in itertools.pairwise(models)) <= 1
               for models in by_slot.values())


def test_nothing_starts_when_everything_is_done(tmp_path):
    store = ResultsStore(tmp_path / "runs.jsonl")
    run_experiment(tiny_spec(), store, train_fn=fake_result)
    backend = MemoryBackend(2)
    with Dispatcher(backend) as dispatcher:
        assert execute(plan_table(tiny_spec()), store, title="tiny", dispatcher=dispatcher) == 0
    assert backend.started == 0 and backend.stopped == 0


def test_local_pool_gives_the_rows_of_this_process_and_survives_a_killed_worker(
        tmp_path, monkeypatch):
    here, pooled = ResultsStore(tmp_path / "here.jsonl"), ResultsStore(tmp_path / "pool.jsonl")
    run_experiment(tiny_spec(), here, train_fn=fake_result)
    monkeypatch.setenv("PAIRZOO_TEST_MARKERS", str(tmp_path))
    with make_dispatcher("local", workers=2, train_fn=dies_once) as dispatcher:
        run_experiment(tiny_spec(), pooled, dispatcher=dispatcher)
    expected, got = stored(here), stored(pooled)
    assert set(got) == set(expected)
    for run_id, row in got.items():
        assert row["test_error"] == expected[run_id]["test_error"]
        assert row["pid"] != os.getpid()  # trained in a worker process
    assert len({row["pid"] for row in got.values()}) >= 2  # killed workers were replaced


@pytest.mark.parametrize("kwargs, phrase", [
    ({"engine": "spark"}, "unknown engine 'spark'"),
    ({"workers": 0}, "--workers must be at least 1"),
    ({"gpus_per_run": 0.5}, "--gpus-per-run needs --engine ray"),
])
def test_engine_mistakes_are_one_line_errors(kwargs, phrase):
    with pytest.raises(PairzooError, match=phrase):
        make_dispatcher(**kwargs)


def test_default_engine_trains_in_this_process():
    assert make_dispatcher("local") is None and make_dispatcher("local", workers=1) is None
