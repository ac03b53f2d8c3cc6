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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pairzoo.config import Preset
from pairzoo.errors import ConfigError
from pairzoo.experiments.spec import ExperimentSpec, _same, cell_label
from pairzoo.registry import get_preset
from pairzoo.runs import RunSpec, explicit_fields, run_id  # noqa: F401  (re-exported)

# A rough cost model for models with no timed run in the store yet: siamese_fullyconv's
# 300-step runs took 14-19 s on the shared 2-core CPU (about 0.05 s per step, tracing
# included). Once a model has a finished run, its own timings replace this.
FALLBACK_STEP_SECONDS = 0.04
RUN_OVERHEAD_SECONDS = 2.0


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


class TimeModel:
    """Seconds per optimizer step for each model, learned from finished runs (the store's and
    this session's); a model never timed falls back to the mean of those timed, then to a
    constant."""

    def __init__(self, rows: list[dict] | None = None):
        self._per_step: dict[str, list[float]] = {}
        for row in rows or []:
            self.add(row)

    def add(self, row: dict) -> None:
        steps, seconds = row.get("steps"), row.get("seconds")
        if steps and seconds:
            self._per_step.setdefault(row["model"], []).append(seconds / steps)

    def step_seconds(self, model: str) -> float | None:
        samples = self._per_step.get(model) or [s for v in self._per_step.values() for s in v]
        return sum(samples) / len(samples) if samples else None

    def seconds(self, run: PlannedRun) -> float:
        per_step = self.step_seconds(run.model)
        if per_step is None:
            return RUN_OVERHEAD_SECONDS + run.steps * FALLBACK_STEP_SECONDS
        return run.steps * per_step

    def timed(self, model: str) -> bool:
        return model in self._per_step

    def total(self, runs: list[PlannedRun]) -> float:
        return sum(self.seconds(run) for run in runs)


def format_duration(seconds: float) -> str:
    """'42 s', '17 min', '3.4 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
