"""A plan: the list of runs an experiment needs, each with a content-derived id.

A run's id hashes what determines its result: the resolved preset (model and recipe, after
every override; fields at their defaults left out), the seed, the data (sources, fixed-pairs
seed, cross-validation fold). The
experiment's name is deliberately left out, so the store is a cache of runs keyed by content:
a cell that two tables share (report 001's Table II reuses four Table I cells; report 004's two
tables share a search grid) is trained once, and a preset edited since a run makes its old rows
no longer count instead of silently standing in for the new model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pairzoo.config import Preset
from pairzoo.errors import ConfigError
from pairzoo.experiments.spec import ExperimentSpec, _same, cell_label
from pairzoo.registry import get_preset
from pairzoo.runs import RunSpec, explicit_fields, run_id  # noqa: F401  (re-exported)


@dataclass
class PlannedRun:
    """One run of an experiment: its RunSpec, and where in the experiment it belongs."""

    experiment: str
    stage: str  # "table" (the experiment's cells) or "search" (choosing a recipe)
    cell: dict  # {axis name: level label}, "model" first
    overrides: dict
    spec: RunSpec
    choice: dict = field(default_factory=dict)  # search runs: the grid point's own overrides
    keep_model_in: Path | None = None  # also write the run folder here (pairzoo release)

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def preset(self) -> Preset:
        return self.spec.preset

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def fold(self) -> int | None:
        return self.spec.fold

    @property
    def model(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return cell_label(self.cell)

    @property
    def data(self) -> dict:
        return self.spec.data

    @property
    def steps(self) -> int:
        return self.spec.steps


def _run_spec(spec: ExperimentSpec, preset: Preset, seed: int, *data) -> RunSpec:
    try:
        return RunSpec(preset, seed, *data)
    except ConfigError as e:  # repetition r trains with seed + r: the last must be in range
        raise ConfigError(f"{spec.name}: a repetition's {e} (the experiment's seed + its "
                          "index; lower --seed or --runs)") from None


def _resolve(model: str, overrides: dict, where: str) -> Preset:
    """The preset a cell trains, failing before any training if the cell is invalid."""
    try:
        return get_preset(model, **overrides)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from e


def matches(cell: dict, only: dict) -> bool:
    """`--only` filters: every named axis must be at the given level."""
    return all(key in cell and _same(cell[key], value) for key, value in only.items())


def plan_table(spec: ExperimentSpec, *, runs: int | None = None, overrides: dict | None = None,
               chosen: dict | None = None, only: dict | None = None,
               train_data: str | None = None, test_data: str | None = None) -> list[PlannedRun]:
    """The experiment's runs: every cell x `runs` seeds.

    Overrides apply in this order, later winning: the spec's, the cell's levels and adjusts,
    a search's choice for the model (`chosen`: model -> overrides), the caller's (`--set`).
    """
    runs = runs or spec.runs
    cells = [cell for cell in spec.cells() if matches(cell, only or {})]
    if not cells:
        raise ConfigError(f"{spec.name}: no cell matches --only {only}")
    plan = []
    for cell in cells:
        cell_overrides = {**spec.cell_overrides(cell), **(chosen or {}).get(cell["model"], {}),
                          **(overrides or {})}
        preset = _resolve(cell["model"], cell_overrides, f"{spec.name} [{cell_label(cell)}]")
        for seed in range(spec.seed, spec.seed + runs):
            run = _run_spec(spec, preset, seed, train_data or spec.train_data,
                            test_data or spec.test_data, spec.pairs_seed)
            plan.append(PlannedRun(spec.name, "table", cell, cell_overrides, run))
    return plan


def plan_search(spec: ExperimentSpec, *, runs: int | None = None,
                overrides: dict | None = None, only: dict | None = None,
                train_data: str | None = None, test_data: str | None = None) -> list[PlannedRun]:
    """The runs of the spec's recipe search: per model (at its preset's flags), every point of
    the search grid x repetitions (x folds for cross-validation)."""
    search = spec.search
    if search is None:
        raise ConfigError(f"{spec.name} has no [search] section")
    runs = runs or search.runs
    only_model = (only or {}).get("model")
    models = [m for m in spec.models if only_model in (None, m)]
    folds = range(search.folds) if search.rule == "cross_validation" else [None]
    plan = []
    for model in models:
        for point in _points(search.axes):
            cell = {"model": model, **{name: label for name, label, _ in point}}
            choice = {k: v for _, _, level in point for k, v in level.items()}
            cell_overrides = {**spec.overrides, **search.overrides, **choice, **(overrides or {})}
            preset = _resolve(model, cell_overrides, f"{spec.name} search [{cell_label(cell)}]")
            for seed in range(search.seed, search.seed + runs):
                for fold in folds:
                    run = _run_spec(spec, preset, seed, train_data or spec.train_data,
                                    test_data or spec.test_data, spec.pairs_seed, fold,
                                    search.folds if fold is not None else None)
                    plan.append(PlannedRun(spec.name, "search", cell, cell_overrides, run,
                                           choice))
    return plan


def _points(axes) -> list[list[tuple[str, Any, dict]]]:
    points = [[]]
    for axis in axes:
        points = [p + [(axis.name, lv.label, lv.overrides)] for p in points for lv in axis.levels]
    return points


# --- time estimates --------------------------------------------------------------------------
#
# One model of time for `--dry-run`, the progress display, the automatic worker count and
# benchmarks/bench_reproduction.py. A run costs `trace + steps x step`, in one process alone on
# the machine: `trace` once per process and architecture (the fast path reuses its traced
# epoch for the runs after), `step` per optimizer step (the per-epoch evaluation included).
# Both are learned per architecture and recipe (cost_key) from finished runs: a run that was
# the first of its architecture in its process paid the trace, the later ones did not. W
# worker processes then finish the plan pool_speedup(W) times sooner than one process.

# Used until some run of the model is timed (in the store, this session, or the shipped
# step_costs.json that bench_reproduction.py writes): siamese_fullyconv's 300-step runs took
# 14-19 s on the shared 2-core CPU.
FALLBACK_STEP_SECONDS = 0.04
FALLBACK_TRACE_SECONDS = 2.0
# Two worker processes (one TF thread each) against one process, on the 2-core reference
# machine: 1.23-1.29x (benchmarks/results/engines.md and training.md). More workers on more
# cores are not measured here: counted as 0.63 of a process each, up to one per core.
SPEEDUP_PER_WORKER = 0.63
# --workers by default: a second worker imports TensorFlow and traces again (5-10 s), so the
# pool starts only for plans that keep it busy.
AUTO_POOL_MIN_RUNS = 4
AUTO_POOL_MIN_SECONDS = 60.0
# Runs that train in this process train K at a time in one traced step (pairzoo.stacked);
# benchmarks/bench_stacked.py measured K = 1, 2, 5, 10 (benchmarks/results/stacked.md).
# Worker processes still train one run at a time: two of them finish a plan as soon as or
# sooner than one stacking process (they import and trace side by side), so the worker choice
# above is unchanged.
DEFAULT_STACK = 5
# How many times sooner K runs finish stacked than one after another in one process (steady,
# the mean over siamese_argmax and siamese_fullyconv, 2026-12-02); a stack traces K models.
STACK_SPEEDUP = {1: 1.0, 2: 1.23, 5: 1.20, 10: 1.11}
STEP_COSTS = Path(__file__).with_name("step_costs.json")


def cost_key(model: str, config: dict, recipe: dict) -> str:
    """What a run's time depends on: the architecture (the model's non-default settings) and
    the recipe's sizes and optimizer; not its learning rate, seed or data."""
    sizes = {k: recipe.get(k) for k in ("batch_size", "n_train", "n_test", "optimizer")}
    return json.dumps([model, config, sizes], sort_keys=True, separators=(",", ":"),
                      default=str)


def run_cost_key(run: PlannedRun) -> str:
    return cost_key(run.model, explicit_fields(run.preset.model),
                    dataclasses.asdict(run.preset.train))


def pool_speedup(workers: int, cores: int | None = None) -> float:
    """How many times sooner `workers` processes finish a plan than one process."""
    cores = cores or os.cpu_count() or 1
    return 1.0 if workers <= 1 else SPEEDUP_PER_WORKER * min(workers, cores)


def stack_speedup(size: int) -> float:
    """How many times sooner a stack of `size` runs trains than its runs one after another
    (the largest size measured that is not bigger)."""
    return STACK_SPEEDUP[max(k for k in STACK_SPEEDUP if k <= max(size, 1))]


def auto_workers(pending: int, seconds: float, cores: int | None = None) -> int:
    """The local engine's worker count when --workers is not given: one process, or (on >= 2
    cores, for a plan of >= AUTO_POOL_MIN_RUNS runs and >= AUTO_POOL_MIN_SECONDS) two, or
    one per two cores on bigger machines."""
    cores = cores or os.cpu_count() or 1
    if cores < 2 or pending < AUTO_POOL_MIN_RUNS or seconds < AUTO_POOL_MIN_SECONDS:
        return 1
    return min(max(2, cores // 2), pending)


class TimeModel:
    """Trace and step seconds per architecture and recipe, learned from finished runs (the
    store's and this session's). An architecture and recipe never timed here takes the
    shipped measurement of it (step_costs.json), else the mean of the same model's other
    recipes (timed here, else shipped), else the mean of everything timed, else constants.
    Seconds are one process's, one run at a time: a row trained beside others (its `workers`)
    is scaled back by pool_speedup, one trained in a stack (its `stacked`) by stack_speedup."""

    def __init__(self, rows: list[dict] | None = None, prior: dict | None = None):
        self._steps: dict[str, list[float]] = {}  # key -> seconds per step, traced runs aside
        self._firsts: dict[str, list[tuple[float, int]]] = {}  # key -> (seconds, steps)
        self._models: dict[str, str] = {}  # key -> model name
        self._seen: set[tuple] = set()  # (host, pid, key): that process has traced it
        self._costs: dict | None = None  # costs(), until the next row
        self.prior = load_step_costs() if prior is None else prior
        for row in rows or []:
            self.add(row)

    def add(self, row: dict) -> None:
        steps, seconds = row.get("steps"), row.get("seconds")
        if not (steps and seconds):
            return
        workers = row.get("workers") or 1
        seconds = seconds * pool_speedup(workers) / workers  # as if alone on the machine
        seconds *= stack_speedup(row.get("stacked") or 1)  # as if trained on its own
        key = cost_key(row["model"], row.get("config") or {}, row.get("recipe") or {})
        self._models[key], self._costs = row["model"], None
        process = (row.get("host"), row.get("pid"), key)
        if process in self._seen or row.get("pid") is None:
            self._steps.setdefault(key, []).append(seconds / steps)
        else:
            self._seen.add(process)
            self._firsts.setdefault(key, []).append((seconds, steps))

    def costs(self) -> dict[str, dict]:
        """{cost key: {"model", "step", "trace"}} for every key timed: what step_costs.json
        holds."""
        if self._costs is not None:
            return self._costs
        costs = self._costs = {}
        for key in {*self._steps, *self._firsts}:
            steady, firsts = self._steps.get(key), self._firsts.get(key, [])
            if steady:
                step = sum(steady) / len(steady)
                traces = [max(s - n * step, 0.0) for s, n in firsts]
                trace = sum(traces) / len(traces) if traces else None
            else:  # only traced runs: the usual trace taken off
                step = sum(max(s - FALLBACK_TRACE_SECONDS, 0.5 * s) / n
                           for s, n in firsts) / len(firsts)
                trace = None
            costs[key] = {"model": self._models[key], "step": step, "trace": trace}
        return costs

    def _lookup(self, key: str, model: str) -> dict | None:
        learned = self.costs()
        for source in (learned, self.prior):
            if key in source:
                return source[key]
        for source in (learned, self.prior):
            same_model = [c for c in source.values() if c["model"] == model]
            if same_model:
                return _mean_cost(same_model)
        return _mean_cost(list(learned.values())) if learned else None

    def run_costs(self, run: PlannedRun) -> tuple[float, float]:
        """(trace seconds, step seconds) for `run`."""
        cost = self._lookup(run_cost_key(run), run.model)
        if cost is None:
            return FALLBACK_TRACE_SECONDS, FALLBACK_STEP_SECONDS
        trace = cost["trace"] if cost.get("trace") is not None else FALLBACK_TRACE_SECONDS
        return trace, cost["step"]

    def seconds(self, run: PlannedRun, traced: bool = False) -> float:
        """One run, in a process that has (traced=True) or has not yet traced its
        architecture."""
        trace, step = self.run_costs(run)
        return run.steps * step + (0.0 if traced else trace)

    def timed(self, model: str) -> bool:
        return any(c["model"] == model for c in (*self.costs().values(),
                                                 *self.prior.values()))

    def total(self, runs: list[PlannedRun], workers: int = 1, cores: int | None = None,
              stack: int = 1) -> float:
        """Wall seconds for `runs` on `workers` processes: every run's steps, one trace per
        architecture and worker that trains it, sped up by the pool; or, in one process with
        `stack` > 1, the stackable runs `stack` at a time (a stack traces each of its models)."""
        by_key: dict[str, list[PlannedRun]] = {}
        for run in runs:
            by_key.setdefault(run_cost_key(run), []).append(run)
        serial = 0.0
        for group in by_key.values():
            trace, step = self.run_costs(group[0])
            steps = sum(run.steps for run in group) * step
            size = min(stack, len(group)) if workers <= 1 and group[0].spec.stackable else 1
            if size > 1:
                serial += size * trace + steps / stack_speedup(size)
            else:
                serial += min(workers, len(group)) * trace + steps
        return serial / pool_speedup(workers, cores)


def _mean_cost(costs: list[dict]) -> dict:
    traces = [c["trace"] for c in costs if c.get("trace") is not None]
    return {"model": costs[0]["model"], "step": sum(c["step"] for c in costs) / len(costs),
            "trace": sum(traces) / len(traces) if traces else None}


def load_step_costs(path: Path | None = None) -> dict[str, dict]:
    """The shipped measurements (benchmarks/bench_reproduction.py --write-costs), or {}."""
    try:
        return json.loads((path or STEP_COSTS).read_text())["costs"]
    except (OSError, ValueError, KeyError):
        return {}


def format_duration(seconds: float) -> str:
    """'42 s', '17 min', '3.4 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
