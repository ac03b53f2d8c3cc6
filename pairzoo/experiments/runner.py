"""Run a plan against a store: train each run not already there, append its row as it ends.

`train` is pairzoo.training.train through its public signature. It is imported only when a
run is actually pending, so re-running a finished experiment (or a dry run) never loads
TensorFlow; tests pass a fake `train_fn` to exercise the machinery in milliseconds.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import time
from datetime import datetime
from types import SimpleNamespace

import pandas as pd

from pairzoo.errors import DivergedError
from pairzoo.experiments.plan import DEFAULT_STACK, PlannedRun, TimeModel, plan_search, plan_table
from pairzoo.experiments.progress import ExperimentProgress
from pairzoo.experiments.selection import choose, chosen_labels
from pairzoo.experiments.spec import METRICS, ExperimentSpec
from pairzoo.experiments.store import ResultsStore
from pairzoo.runs import explicit_fields


def history_lists(history: pd.DataFrame) -> dict[str, list]:
    """Per-epoch columns as lists (6 significant digits keep rows small)."""
    return {column: [float(f"{v:.6g}") for v in history[column]]
            for column in history.columns if column != "epoch"}


def make_row(run: PlannedRun, result, seconds: float, versions: dict) -> dict:
    """One store row: who (experiment, cell), what (overrides, seed, data), every metric
    (rates in percent), the history, the time taken and the package versions."""
    return {
        "run_id": run.run_id, "experiment": run.experiment, "stage": run.stage,
        "model": run.model, "cell": run.cell, "cell_label": run.label,
        "overrides": run.overrides, "seed": run.seed, **run.data,
        # the full recipe, and the model's non-default settings: the row stands on its own
        "recipe": dataclasses.asdict(run.preset.train),
        "config": explicit_fields(run.preset.model),
        "status": "ok", "units": "percent",
        **result.metrics, "epochs": run.preset.train.epochs, "steps": run.steps,
        "seconds": round(seconds, 3), "history": history_lists(result.history),
        "pools": {k: v for k, v in result.data.items() if k.endswith("_pool")},
        "versions": versions, "host": socket.gethostname(), "pid": os.getpid(),
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def execute(plan: list[PlannedRun], store: ResultsStore, *, title: str, train_fn=None,
            device: str | None = None, console=None, dispatcher=None,
            stack: int = DEFAULT_STACK) -> int:
    """Train every planned run missing from the store; returns how many were trained.
    `dispatcher` (engines.make_dispatcher) trains them in worker processes or on Ray; by
    default they train here with a per-epoch display, up to `stack` runs of one preset at a
    time in one traced step (pairzoo.stacked; 1: one after the other)."""
    pending = [run for run in plan if not store.done(run.run_id)]
    times = TimeModel(store.rows())
    trained = 0
    workers = getattr(getattr(dispatcher, "backend", None), "workers", 1) or 1
    # an injected train_fn (tests, other trainers) or a remote worker gets no epoch callback
    with ExperimentProgress(title, pending, len(plan) - len(pending), times, console,
                            epoch_callbacks=train_fn is None and dispatcher is None,
                            workers=workers,
                            stack=stack if dispatcher is None and train_fn is None else 1
                            ) as display:
        finished = (dispatcher.run(pending, store, display) if dispatcher is not None
                    else _in_process(pending, store, display, train_fn, device, stack))
        for run, row in finished:
            row["workers"] = workers  # runs trained side by side: what its seconds mean
            store.append(row)  # the store's own writer, whichever engine trained the run
            display.run_finished(run, row)
            trained += 1
    return trained


def _in_process(pending, store, display, train_fn, device, stack=1):
    """Yields (run, row) as each run (or stack of runs) ends; the caller stores a row before
    the next one starts, so a killed experiment loses at most the runs in progress."""
    for group in stacks(pending, stack if train_fn is None else 1):
        fresh = []
        for run in group:
            if store.done(run.run_id):  # a concurrent experiment has finished it meanwhile
                display.skipped(run)
            else:
                fresh.append(run)
        if len(fresh) == 1:
            run = fresh[0]
            yield run, train_row(run, device, train_fn, callbacks=display.run_started(run))
        elif fresh:
            yield from stacked_rows(fresh, device, callbacks=display.stack_started(fresh))


def stacks(runs: list[PlannedRun], size: int) -> list[list[PlannedRun]]:
    """The runs in plan order, neighbours of one preset (and data size) that can share a
    traced step grouped `size` at a time; every other run alone."""
    if size <= 1:
        return [[run] for run in runs]
    from pairzoo.stacked import stackable

    groups: list[list[PlannedRun]] = []
    for run in runs:
        last = groups[-1] if groups else None
        if (last and len(last) < size and stackable(run.spec) and stackable(last[0].spec)
                and run.preset == last[0].preset):
            last.append(run)
        else:
            groups.append([run])
    return groups


def stacked_rows(runs: list[PlannedRun], device: str | None = None, callbacks=None):
    """Train runs of one preset in one stack (pairzoo.stacked); yields (run, row) for each,
    in order. A diverged run gets its failed row and the others theirs; every row's seconds
    are its share of the stack's time, and `stacked` says how many shared it."""
    from pairzoo.stacked import train_together

    _, versions = _trainer()
    start = time.perf_counter()
    outcomes = train_together([run.spec for run in runs], device=device,
                              callbacks=[callbacks] + [None] * (len(runs) - 1))
    share = (time.perf_counter() - start) / len(runs)
    for run, outcome in zip(runs, outcomes, strict=True):
        if isinstance(outcome, DivergedError):
            row = failed_row(run, "diverged", str(outcome), share, versions)
        else:
            if run.keep_model_in is not None:
                _keep(outcome, run.keep_model_in)
            row = make_row(run, outcome, share, versions)
        yield run, {**row, "stacked": len(runs)}


def train_row(run: PlannedRun, device: str | None = None, train_fn=None,
              callbacks=None) -> dict:
    """Train one planned run and return its store row: here, or in a worker process."""
    train, versions = _trainer(train_fn)
    start = time.perf_counter()
    try:
        result = train(run.spec, device=device, callbacks=callbacks)
    except DivergedError as error:
        return failed_row(run, "diverged", str(error), time.perf_counter() - start, versions)
    if run.keep_model_in is not None:
        _keep(result, run.keep_model_in)
    return make_row(run, result, time.perf_counter() - start, versions)


def _keep(result, folder) -> None:
    """The run's folder, for runs whose model is needed afterwards (release candidates). A
    folder left by a run whose row never reached the store is that run's, unfinished: it goes."""
    import shutil

    from pairzoo.training import save_run

    shutil.rmtree(folder, ignore_errors=True)
    save_run(result, folder)


def failed_row(run: PlannedRun, status: str, why: str, seconds: float, versions: dict) -> dict:
    """A run that ended without a model (its loss or weights became non-finite): stored, so
    tables count it ("2 of 10 diverged") and resuming does not retrain it, with no metric that
    could be averaged into a cell."""
    empty = SimpleNamespace(metrics=dict.fromkeys(METRICS), history=pd.DataFrame(), data={})
    return {**make_row(run, empty, seconds, versions), "status": status, "error": why}


@functools.cache
def _trainer(train_fn=None):
    """(train function, the versions its rows record), once per process: pairzoo's `train`
    with the backend's versions, or an injected train_fn (tests, other trainers) with the
    installed versions, read without importing the backend."""
    if train_fn is None:
        from pairzoo.training import package_versions, train

        return train, package_versions()
    from pairzoo.versions import installed_versions

    return train_fn, installed_versions()


def plan_frame(plan: list[PlannedRun], store: ResultsStore) -> pd.DataFrame:
    """The finished runs of a plan, labelled by the plan's cells (a run another experiment
    trained first keeps its own row but takes this plan's cell here)."""
    by_id = {row["run_id"]: row for row in store.rows()}
    records = []
    for run in plan:
        row = by_id.get(run.run_id)
        if row is not None:
            records.append({**row, "experiment": run.experiment, "cell": run.cell,
                            "cell_label": run.label, "label": run.label})
    return pd.DataFrame(records)


def run_search(spec: ExperimentSpec, store: ResultsStore, *, runs=None, overrides=None,
               only=None, train_data=None, test_data=None, train_fn=None, device=None,
               console=None, dispatcher=None, stack=DEFAULT_STACK) -> tuple[dict, pd.DataFrame]:
    """Run the spec's recipe search; returns (model -> chosen overrides, the score table)."""
    plan = plan_search(spec, runs=runs, overrides=overrides, only=only,
                       train_data=train_data, test_data=test_data)
    execute(plan, store, title=f"{spec.name} search ({spec.search.rule})", train_fn=train_fn,
            device=device, console=console, dispatcher=dispatcher, stack=stack)
    table = choose(plan_frame(plan, store), spec.search.rule)
    labels = chosen_labels(table)
    choice = {run.model: run.choice for run in plan if labels.get(run.model) == run.label}
    return choice, table


def run_experiment(spec: ExperimentSpec, store: ResultsStore, *, runs=None, overrides=None,
                   only=None, search=False, search_runs=None, train_data=None, test_data=None,
                   train_fn=None, device=None, console=None, dispatcher=None,
                   stack=DEFAULT_STACK) -> dict:
    """The whole experiment: the recipe search first when asked, then every cell's runs.
    Returns {"plan": the table's runs, "search": the search's score table or None,
    "chosen": model -> the overrides the search chose}."""
    chosen, search_table = {}, None
    data = {"train_data": train_data, "test_data": test_data}
    if search:
        chosen, search_table = run_search(spec, store, runs=search_runs, overrides=overrides,
                                          only=only, train_fn=train_fn, device=device,
                                          console=console, dispatcher=dispatcher, stack=stack,
                                          **data)
    plan = plan_table(spec, runs=runs, overrides=overrides, chosen=chosen, only=only, **data)
    execute(plan, store, title=spec.name, train_fn=train_fn, device=device, console=console,
            dispatcher=dispatcher, stack=stack)
    return {"plan": plan, "search": search_table, "chosen": chosen}
