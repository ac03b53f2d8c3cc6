"""Which tables a results store holds, read as `pairzoo reproduce` reads them.

A row names the experiment that trained it, yet a run serves every table that plans it (its
id is its content), and one experiment name may also hold runs of an older preset or of a
`--set` variant. So a store is read in two parts:

- planned: each experiment the store names that has a spec (`<experiment>.toml` beside the
  store, else a shipped spec), with the shipped specs of the same report, gives its table
  through its plan: the cells and numbers `pairzoo reproduce --tables-only` gives, whichever
  experiment trained each run;
- left over: the rows in no such plan, per experiment and stage, with each cell split by
  recipe (pairzoo.runs.recipe_settings): runs that differ in recipe are never one mean. The
  rows then carry a `recipe` axis saying how they differ (from the plan's recipe for the same
  cell when the experiment has one, else from each other).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pairzoo.analysis import rows
from pairzoo.experiments.plan import PlannedRun
from pairzoo.experiments.spec import ExperimentSpec, cell_label
from pairzoo.experiments.store import ResultsStore

RECIPE = "recipe"  # the axis that tells apart a cell's runs of different recipes


@dataclass
class Planned:
    spec: ExperimentSpec
    plan: list[PlannedRun]
    frame: pd.DataFrame  # the plan's finished runs, labelled by its cells (plan_frame)


@dataclass
class Leftover:
    experiment: str
    stage: str
    frame: pd.DataFrame  # rows split by recipe: `cell` and `cell_label` say how they differ
    planned: bool  # the experiment's own plan is shown: these rows are outside it

    @property
    def title(self) -> str:
        name = self.experiment if self.stage == "table" else f"{self.experiment} ({self.stage})"
        if self.planned and self.stage == "table":
            return f"{name}: runs outside its plan (another recipe or an older preset)"
        return name

    @property
    def name(self) -> str:
        stem = self.experiment if self.stage == "table" else f"{self.experiment}_{self.stage}"
        return f"{stem}_outside_plan" if self.planned and self.stage == "table" else stem


def spec_for(experiment: str, store_path: Path) -> ExperimentSpec | None:
    """The spec of an experiment a store names: `<experiment>.toml` beside the store, else
    the shipped spec of that name, else None."""
    from pairzoo.experiments.spec import load_spec, shipped_specs

    beside = Path(store_path).parent / f"{experiment}.toml"
    if beside.is_file():
        return load_spec(beside)
    return load_spec(experiment) if experiment in shipped_specs() else None


def _specs(names: list[str], store_path: Path) -> list[ExperimentSpec]:
    """The specs of the experiments named, and the shipped specs of their reports, by name."""
    from pairzoo.experiments.spec import specs_for_report

    found: dict[str, ExperimentSpec] = {}
    for name in names:
        spec = spec_for(name, store_path)
        if spec is None:
            continue
        found.setdefault(spec.name, spec)
        if spec.report:
            for sibling in specs_for_report(spec.report):
                found.setdefault(sibling.name, sibling)
    return [found[name] for name in sorted(found)]


def read_store(store: ResultsStore, experiment: str = "*") -> tuple[list[Planned],
                                                                     list[Leftover]]:
    """The store's planned tables and left-over rows whose experiment matches the pattern
    `experiment`."""
    from pairzoo.experiments.plan import plan_table
    from pairzoo.experiments.runner import plan_frame

    frame = store.frame()
    names = list(dict.fromkeys(frame["experiment"]))
    planned = []
    for spec in _specs(names, store.path):
        if not fnmatch.fnmatchcase(spec.name, experiment):
            continue
        plan = plan_table(spec)
        found = plan_frame(plan, store)
        if len(found):
            planned.append(Planned(spec, plan, found))
    shown = {run.run_id for p in planned for run in p.plan}
    plan_recipes = {(p.spec.name, run.label): run.spec for p in planned for run in p.plan}
    leftovers = []
    wanted = frame["experiment"].map(lambda e: fnmatch.fnmatchcase(str(e), experiment))
    rest = frame[wanted & ~((frame["stage"] == "table") & frame["run_id"].isin(shown))]
    for (name, stage), part in rest.groupby(["experiment", "stage"], sort=False):
        has_plan = any(p.spec.name == name for p in planned)
        references = {label: run for (spec, label), run in plan_recipes.items()
                      if spec == name} if stage == "table" else {}
        leftovers.append(Leftover(str(name), str(stage), split_by_recipe(part, references),
                                  has_plan))
    return planned, leftovers


def split_by_recipe(part: pd.DataFrame, references: dict | None = None) -> pd.DataFrame:
    """`part` with the runs of each cell split by recipe: where a cell holds more than one
    recipe, or a recipe other than `references[cell label]` (a RunSpec: the plan's run of that
    cell), its rows' `cell` gains a `recipe` level saying how it differs, and its `cell_label`
    that level. Cells of one recipe are left as they are."""
    from pairzoo.runs import recipe_settings

    part = part.copy()
    settings = [rows.recipe(row) for row in part.to_dict("records")]
    keys = [rows.recipe_key(s) for s in settings]
    differences, planned = [""] * len(part), [False] * len(part)
    for label in dict.fromkeys(part["cell_label"]):
        members = [i for i, lbl in enumerate(part["cell_label"]) if lbl == label]
        recipes = {keys[i]: settings[i] for i in members}
        reference = (references or {}).get(label)
        if reference is not None:
            wanted = recipe_settings(reference.preset, reference.data)
            labels = dict(zip(recipes, rows.recipe_differences(list(recipes.values()), wanted),
                              strict=True))
        elif len(recipes) > 1:
            labels = dict(zip(recipes, rows.recipe_differences(list(recipes.values())),
                              strict=True))
        else:
            continue
        for i in members:
            differences[i], planned[i] = labels[keys[i]], reference is not None
    if any(differences):
        # the plan's own recipe (seeds beyond its runs), or a cell holding one recipe
        fillers = ["as planned" if p else "-" for p in planned]
        part["cell"] = [{**cell, RECIPE: diff or filler} for cell, diff, filler in
                        zip(part["cell"], differences, fillers, strict=True)]
        part["cell_label"] = [cell_label(cell) if diff else label for cell, label, diff in
                              zip(part["cell"], part["cell_label"], differences, strict=True)]
    return part
