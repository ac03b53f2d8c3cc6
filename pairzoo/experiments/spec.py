"""Experiment specs: models x flag grid x recipe grid x N repetitions, as checked TOML.

    [experiment]                       name, title, report, models, runs, seed, metrics, ...
    [overrides]                        preset overrides for every run ("train.epochs" = 30)
    [grid]                             flag axes: share_weights = [false, true]
    [grid.dropout]                     a named axis whose levels set several keys at once:
    no = {}                              level name -> overrides
    yes = { "tower.dropout" = 0.25, head_dropout = 0.25 }
    [recipe]                           recipe axes: "train.learning_rate" = [1e-3, 1e-2]
    [[adjust]]                         conditional overrides, for cells matching `when`
    when = { aux_weight = 0.0 }
    set = { "train.epochs" = 25 }
    [search]                           how the report chose its recipe (run with --search)
    rule = "lowest_train_loss"         | "best_accuracy" | "cross_validation"
    grid = { "train.learning_rate" = [0.3, 0.05] }
    [[report]]                         the report's figure for one cell
    model = "siamese_lenet5"           cell keys: model and axis levels
    share_weights = true
    test_error = [6.08, 0.80]          metric = [mean, std] (std may be left out)
    [converged]                        what counts as a converged run: tables show cells
    metric = "digit_accuracy"            with a run that fails it both ways (all runs, and
    min = 50.0                           converged runs only); percent
    [[contrast]]                       a factor the models carry: [[without, with], ...]
    factor = "weight sharing"
    pairs = [["two_tower_cnn_mlp", "siamese_cnn_mlp"]]
    [[claim]]                          one statement of the report, checked on our runs
    text = "auxiliary losses lower the error in every model"
    kind = "lower"                     see CLAIM_KINDS; `cell` and `than` select cells
    cell = { aux_weight = 1.0 }
    than = { aux_weight = 0.0 }
    per = ["model", "share_weights"]   one check per combination of these axes

Unknown sections and keys are errors with close-match suggestions, like the presets'
(pairzoo.config): a typo in a spec must never silently widen or shrink a grid.
"""

from __future__ import annotations

import difflib
import itertools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pairzoo.errors import ConfigError

# Metrics a run reports (pairzoo.evaluation.score) that tables and report figures may name.
# test_error is in percent; the others are fractions in the store and percent in tables.
METRICS = ("test_error", "test_accuracy", "f1", "auc", "digit_accuracy",
           "inference_test_error",  # runs measured in training mode (report 001)
           # distilled runs (pairzoo.distillation): their first teacher alone (the teacher
           # preset's own run of the seed) and the teachers' ensemble, on the same test pairs
           "teacher_test_error", "teachers_test_error", "teachers_digit_accuracy")
RULES = ("lowest_train_loss", "best_accuracy", "cross_validation")
SPECS_FOLDER = "experiments"  # inside the pairzoo.zoo_configs package data

_SECTIONS = ("experiment", "overrides", "grid", "recipe", "adjust", "search", "report",
             "converged", "contrast", "claim")
_EXPERIMENT_KEYS = ("name", "title", "report", "aliases", "models", "runs", "seed", "metrics",
                    "train_data", "test_data", "pairs_seed", "notes")
_SEARCH_KEYS = ("rule", "grid", "runs", "folds", "seed", "overrides", "notes")
_ADJUST_KEYS = ("when", "set")
_CONVERGED_KEYS = ("metric", "min", "max", "note")
_CONTRAST_KEYS = ("factor", "pairs", "note")
# What a claim may state about the selected cells (`cell`, then `than` or `value`):
#   lower / higher         cell's mean below / above than's (optionally `by` points or
#                          `times` fold: a number = at least, [lo, hi] = between)
#   best / worst           cell's mean better / worse than every other cell (of `among`);
#                          for error metrics better is lower, for accuracies higher
#   similar                within +-margin points of than's
#   not_lower / not_higher not below (above) than's by more than `margin` points
#   more_variable          cell's runs spread more than than's (Brown-Forsythe test)
#   failures               `count` runs of the cell fail the [converged] criterion
#   untested               recorded with its `reason`: our runs cannot check it
CLAIM_KINDS = ("lower", "higher", "best", "worst", "similar", "not_lower", "not_higher",
               "more_variable", "failures", "untested")
CLAIM_METRICS = (*METRICS, "train_seconds")
_CLAIM_KEYS = ("text", "kind", "cell", "than", "value", "per", "each", "by", "times",
               "margin", "among", "metric", "count", "reason", "note")


# --- the pieces of a spec --------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """One value of an axis: what tables show (`label`) and the overrides it applies."""

    label: Any
    overrides: dict = field(hash=False)


@dataclass(frozen=True)
class Axis:
    name: str
    levels: tuple[Level, ...]

    def level(self, label: Any) -> Level | None:
        return next((lv for lv in self.levels if _same(lv.label, label)), None)


@dataclass(frozen=True)
class Adjust:
    """Overrides for the cells whose levels match `when` (report 001's no-aux cells trained
    25 epochs, not 30: a quirk of the authors' code that their table reflects)."""

    when: dict
    set: dict

    def matches(self, cell: dict) -> bool:
        return all(_same(cell.get(key), value) for key, value in self.when.items())


@dataclass(frozen=True)
class Search:
    """How a report chose each model's recipe: a grid of recipe axes, a rule, repetitions."""

    rule: str
    axes: tuple[Axis, ...]
    runs: int = 3  # repetitions per grid point (each a new seed)
    folds: int = 10  # cross_validation only: folds of each repetition's training pairs
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # e.g. longer training for the search
    notes: str = ""


@dataclass(frozen=True)
class ReportCell:
    """The report's figure for one cell: `where` names the cell (model and axis levels),
    `figures` maps a metric to (mean, std or None), in percent."""

    where: dict
    figures: dict
    runs: int = 0
    note: str = ""


@dataclass(frozen=True)
class Converged:
    """A run converged when `metric` (percent) is >= `min` and <= `max`: report 003's
    Siamese2 has runs that stay finite but never learn the digits (digit accuracy < 50 %)."""

    metric: str
    min: float | None = None
    max: float | None = None
    note: str = ""

    def holds(self, values):
        """Elementwise, for a pandas Series of the metric (NaN: not converged)."""
        keep = values.notna()
        if self.min is not None:
            keep &= values >= self.min
        if self.max is not None:
            keep &= values <= self.max
        return keep

    @property
    def label(self) -> str:
        bounds = ([f"≥ {self.min:g} %"] if self.min is not None else []) + (
            [f"≤ {self.max:g} %"] if self.max is not None else [])
        return f"{self.metric.replace('_', ' ')} {' and '.join(bounds)}"


@dataclass(frozen=True)
class Contrast:
    """A factor that models carry rather than a grid axis: each pair is (without, with)."""

    factor: str
    pairs: tuple[tuple[str, str], ...]
    note: str = ""


@dataclass(frozen=True)
class Claim:
    """One statement of a report, checkable on our runs (see CLAIM_KINDS)."""

    text: str
    kind: str
    cell: dict = field(default_factory=dict, hash=False)  # axis -> level, or list of levels
    than: dict = field(default_factory=dict, hash=False)
    value: float | None = None  # compare with this number instead of `than`
    per: tuple[str, ...] = ()  # one check per combination of these axes' levels
    each: bool = False  # every selected cell against every other, not the groups' means
    by: tuple | None = None  # (at least, at most) points; None where open
    times: tuple | None = None  # (at least, at most) fold
    margin: float = 0.0
    among: dict = field(default_factory=dict, hash=False)  # best/worst: the cells compared
    metric: str = "test_error"
    count: int | None = None  # failures
    reason: str = ""  # untested
    note: str = ""


@dataclass
class ExperimentSpec:
    name: str
    models: list[str]
    axes: list[Axis] = field(default_factory=list)  # flag axes, then recipe axes
    runs: int = 10
    seed: int = 0  # repetition r uses seed `seed + r`: new pairs and a new initialisation
    metrics: list[str] = field(default_factory=lambda: ["test_error"])
    overrides: dict = field(default_factory=dict)
    adjust: list[Adjust] = field(default_factory=list)
    search: Search | None = None
    report_cells: list[ReportCell] = field(default_factory=list)
    title: str = ""
    report: str = ""  # the report's file name in the seeds folder
    aliases: list[str] = field(default_factory=list)
    train_data: str = "embedded"
    test_data: str | None = None
    pairs_seed: int | None = None  # set: every repetition trains on this seed's pairs
    notes: str = ""
    converged: Converged | None = None
    contrasts: list[Contrast] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    @property
    def axis_names(self) -> list[str]:
        return ["model", *(axis.name for axis in self.axes)]

    def cells(self) -> list[dict]:
        """Every cell as {axis name: level label}, models first, in the spec's order."""
        grids = [[(axis.name, lv.label) for lv in axis.levels] for axis in self.axes]
        return [{"model": model, **dict(combo)}
                for model in self.models for combo in itertools.product(*grids)]

    def cell_overrides(self, cell: dict) -> dict:
        """The overrides a cell applies: spec-wide, then its levels, then matching adjusts."""
        overrides = dict(self.overrides)
        for axis in self.axes:
            overrides.update(axis.level(cell[axis.name]).overrides)
        for rule in self.adjust:
            if rule.matches(cell):
                overrides.update(rule.set)
        return overrides

    def report_for(self, cell: dict) -> ReportCell | None:
        return next((rc for rc in self.report_cells
                     if all(_same(cell.get(k), v) for k, v in rc.where.items())), None)


# --- helpers ---------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Level equality where TOML's 0 and 0.0 are the same, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def format_level(value: Any) -> str:
    """How a level reads in tables and cell labels: yes/no, 0.005, [32, 64], dropout."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def cell_label(cell: dict) -> str:
    """'siamese_lenet5 share_weights=yes aux_weight=0': a stable, readable key per cell."""
    parts = [str(cell["model"])] if "model" in cell else []
    parts += [f"{k}={format_level(v)}" for k, v in cell.items() if k != "model"]
    return " ".join(parts)


def _check_keys(where: str, given, known) -> None:
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = (f"; did you mean {', '.join(close)}?" if close
                    else f"; known: {', '.join(known)}")
            raise ConfigError(f"unknown key {where}{key}{hint}")


def _want(where: str, value: Any, kind: type | tuple, what: str) -> Any:
    if isinstance(value, bool) and kind in (int, float):
        raise ConfigError(f"{where} must be {what}; got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where} must be {what}; got {value!r}")
    return value


def _axes(where: str, table: dict) -> list[Axis]:
    """`key = [v1, v2]` is an axis over one override key; `[name] level = {...}` a named one."""
    axes = []
    for name, value in table.items():
        if isinstance(value, list):
            if not value:
                raise ConfigError(f"{where}{name} has no values")
            axes.append(Axis(name, tuple(Level(v, {name: v}) for v in value)))
        elif isinstance(value, dict):
            if not value or not all(isinstance(v, dict) for v in value.values()):
                raise ConfigError(f"{where}{name} must map level names to override tables, "
                                  "e.g. yes = { \"tower.dropout\" = 0.25 }")
            axes.append(Axis(name, tuple(Level(k, dict(v)) for k, v in value.items())))
        else:
            raise ConfigError(f"{where}{name} must be a list of values or a table of named "
                              f"levels; got {value!r}")
    return axes


def _figure(where: str, value: Any) -> tuple[float, float | None]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    if (isinstance(value, list) and 1 <= len(value) <= 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return float(value[0]), (float(value[1]) if len(value) == 2 else None)
    raise ConfigError(f"{where} must be a number or [mean, std] in percent; got {value!r}")


def _report_cell(index: int, entry: dict, spec: ExperimentSpec) -> ReportCell:
    where = f"report[{index}]."
    axes = {axis.name: axis for axis in spec.axes}
    cell, figures = {}, {}
    for key, value in entry.items():
        if key in METRICS:
            figures[key] = _figure(where + key, value)
        elif key == "model":
            if value not in spec.models:
                raise ConfigError(f"{where}model {value!r} is not one of the experiment's "
                                  f"models ({', '.join(spec.models)})")
            cell[key] = value
        elif key in axes:
            if axes[key].level(value) is None:
                levels = ", ".join(format_level(lv.label) for lv in axes[key].levels)
                raise ConfigError(f"{where}{key} = {value!r} is not a level of that axis "
                                  f"({levels})")
            cell[key] = value
        elif key not in ("runs", "note"):
            _check_keys(where, [key], [*METRICS, *spec.axis_names, "runs", "note"])
    if not figures:
        raise ConfigError(f"{where.rstrip('.')} gives no figure: add e.g. test_error = "
                          "[mean, std]")
    return ReportCell(cell, figures, int(entry.get("runs", 0)), str(entry.get("note", "")))


def _search(data: dict) -> Search:
    _check_keys("search.", data, _SEARCH_KEYS)
    rule = data.get("rule", "")
    if rule not in RULES:
        raise ConfigError(f"search.rule must be one of {', '.join(RULES)}; got {rule!r}")
    axes = _axes("search.grid.", _want("search.grid", data.get("grid", {}), dict, "a table"))
    if not axes:
        raise ConfigError("search.grid is empty: give the values to search, e.g. "
                          "\"train.learning_rate\" = [1e-3, 1e-2]")
    runs = _want("search.runs", data.get("runs", 3), int, "a positive integer")
    folds = _want("search.folds", data.get("folds", 10), int, "an integer >= 2")
    if runs < 1 or folds < 2:
        raise ConfigError("search.runs must be >= 1 and search.folds >= 2")
    seed = _want("search.seed", data.get("seed", 0), int, "an integer")
    return Search(rule, tuple(axes), runs, folds, seed,
                  dict(data.get("overrides", {})), str(data.get("notes", "")))


def _converged(data: dict) -> Converged:
    _check_keys("converged.", data, _CONVERGED_KEYS)
    metric = data.get("metric", "")
    if metric not in METRICS:
        raise ConfigError(f"converged.metric must be one of {', '.join(METRICS)}; got "
                          f"{metric!r}")
    bounds = {k: _want(f"converged.{k}", data[k], (int, float), "a number in percent")
              for k in ("min", "max") if k in data}
    if not bounds:
        raise ConfigError("converged needs min or max (percent), e.g. min = 50.0")
    return Converged(metric, bounds.get("min"), bounds.get("max"), str(data.get("note", "")))


def _contrast(index: int, data: dict, models: list[str]) -> Contrast:
    where = f"contrast[{index}]."
    _check_keys(where, data, _CONTRAST_KEYS)
    factor = _want(where + "factor", data.get("factor", ""), str, "a name")
    pairs = _want(where + "pairs", data.get("pairs", []), list, "a list of [without, with]")
    if not factor or not pairs:
        raise ConfigError(f"{where}factor and pairs are required, e.g. factor = \"weight "
                          "sharing\", pairs = [[\"two_tower_x\", \"siamese_x\"]]")
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and all(m in models for m in pair)):
            raise ConfigError(f"{where}pairs: {pair!r} must be [without, with], two of the "
                              f"experiment's models ({', '.join(models)})")
    return Contrast(factor, tuple(tuple(p) for p in pairs), str(data.get("note", "")))


def _selector(where: str, value: Any, spec: ExperimentSpec) -> dict:
    """{axis: level or [levels]}: the cells a claim names."""
    _want(where, value, dict, "a table of axis = level, e.g. { model = \"siamese_x\" }")
    _check_keys(where + ".", value, spec.axis_names)
    axes = {axis.name: axis for axis in spec.axes}
    for key, wanted in value.items():
        for level in (wanted if isinstance(wanted, list) else [wanted]):
            known = (level in spec.models if key == "model"
                     else axes[key].level(level) is not None)
            if not known:
                raise ConfigError(f"{where}.{key} = {level!r} is not a level of that axis")
    return dict(value)


def _bounds(where: str, value: Any) -> tuple | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return float(value[0]), float(value[1])
    raise ConfigError(f"{where} must be a number (at least) or [at least, at most]; "
                      f"got {value!r}")


def _claim(index: int, data: dict, spec: ExperimentSpec) -> Claim:
    where = f"claim[{index}]."
    _check_keys(where, data, _CLAIM_KEYS)
    text = _want(where + "text", data.get("text", ""), str, "the report's statement")
    kind = data.get("kind", "")
    if not text or kind not in CLAIM_KINDS:
        raise ConfigError(f"{where}text is required and kind must be one of "
                          f"{', '.join(CLAIM_KINDS)}; got kind {kind!r}")
    metric = data.get("metric", "test_error")
    if metric not in CLAIM_METRICS:
        raise ConfigError(f"{where}metric must be one of {', '.join(CLAIM_METRICS)}")
    cell = _selector(where + "cell", data.get("cell", {}), spec)
    than = _selector(where + "than", data.get("than", {}), spec)
    value = data.get("value")
    if value is not None:
        value = float(_want(where + "value", value, (int, float), "a number"))
    pairwise = ("lower", "higher", "similar", "not_lower", "not_higher", "more_variable")
    if kind != "untested" and not cell:
        raise ConfigError(f"{where}cell is required: the cells the claim is about")
    if kind in pairwise and not than and (value is None or kind == "more_variable"):
        raise ConfigError(f"{where}{kind} needs `than` (the cells compared with)"
                          + ("" if kind == "more_variable" else " or `value`"))
    margin = data.get("margin", 0.0)
    _want(where + "margin", margin, (int, float), "a number of points")
    if kind == "similar" and not margin > 0:
        raise ConfigError(f"{where}similar needs margin > 0 (points)")
    if data.get("times") is not None and (kind not in ("lower", "higher") or not than):
        raise ConfigError(f"{where}times needs kind lower or higher and `than` cells")
    if kind == "failures" and not isinstance(data.get("count"), int):
        raise ConfigError(f"{where}failures needs count (runs failing [converged])")
    if kind == "failures" and spec.converged is None:
        raise ConfigError(f"{where}failures needs a [converged] section")
    if kind == "untested" and not data.get("reason"):
        raise ConfigError(f"{where}untested needs a reason")
    per = list(data.get("per", []))
    _check_keys(where + "per: ", per, spec.axis_names)
    return Claim(text, kind, cell, than, value, tuple(per), bool(data.get("each", False)),
                 _bounds(where + "by", data.get("by")), _bounds(where + "times",
                                                              data.get("times")),
                 float(margin), _selector(where + "among", data.get("among", {}), spec),
                 metric, data.get("count"), str(data.get("reason", "")),
                 str(data.get("note", "")))


# --- parsing ---------------------------------------------------------------------------------


def spec_from_dict(data: dict, source: str = "spec") -> ExperimentSpec:
    _check_keys("", data, _SECTIONS)
    head = data.get("experiment", {})
    _check_keys("experiment.", head, _EXPERIMENT_KEYS)
    name = head.get("name") or Path(source).stem
    models = _want("experiment.models", head.get("models", []), list, "a list of zoo names")
    if not models:
        raise ConfigError(f"{source}: experiment.models is empty; name at least one zoo model")
    runs = _want("experiment.runs", head.get("runs", 10), int, "a positive integer")
    if runs < 1:
        raise ConfigError(f"experiment.runs must be at least 1; got {runs}")
    metrics = list(head.get("metrics", ["test_error"]))
    _check_keys("experiment.metrics: ", metrics, METRICS)
    grid = _axes("grid.", _want("grid", data.get("grid", {}), dict, "a table"))
    recipe = _axes("recipe.", _want("recipe", data.get("recipe", {}), dict, "a table"))
    names = [axis.name for axis in grid + recipe]
    if len(set(names)) != len(names) or "model" in names:
        raise ConfigError(f"{source}: axis names must be unique and not 'model'; got {names}")
    spec = ExperimentSpec(
        name=str(name), models=[str(m) for m in models], axes=grid + recipe, runs=runs,
        seed=_want("experiment.seed", head.get("seed", 0), int, "an integer"),
        metrics=metrics, overrides=dict(data.get("overrides", {})),
        title=str(head.get("title", "")), report=str(head.get("report", "")),
        aliases=[str(a) for a in head.get("aliases", [])],
        train_data=str(head.get("train_data", "embedded")), test_data=head.get("test_data"),
        pairs_seed=head.get("pairs_seed"), notes=str(head.get("notes", "")),
    )
    for index, rule in enumerate(data.get("adjust", [])):
        _check_keys(f"adjust[{index}].", rule, _ADJUST_KEYS)
        _check_keys(f"adjust[{index}].when.", rule.get("when", {}), spec.axis_names)
        spec.adjust.append(Adjust(dict(rule.get("when", {})), dict(rule.get("set", {}))))
    if "search" in data:
        spec.search = _search(data["search"])
        clash = {a.name for a in spec.search.axes} & set(names)
        if clash:
            raise ConfigError(f"{source}: {sorted(clash)} is both searched and a grid axis")
    spec.report_cells = [_report_cell(i, entry, spec)
                         for i, entry in enumerate(data.get("report", []))]
    if "converged" in data:
        spec.converged = _converged(data["converged"])
    spec.contrasts = [_contrast(i, entry, spec.models)
                      for i, entry in enumerate(data.get("contrast", []))]
    spec.claims = [_claim(i, entry, spec) for i, entry in enumerate(data.get("claim", []))]
    return spec


def load_spec(path_or_name: str | Path) -> ExperimentSpec:
    """A spec from a TOML file, or a shipped one by name (`001_table1`)."""
    path = Path(path_or_name)
    if not path.is_file():
        shipped = shipped_specs()
        if str(path_or_name) not in shipped:
            close = difflib.get_close_matches(str(path_or_name), shipped, n=3, cutoff=0.5)
            hint = (f"; did you mean {', '.join(close)}?" if close
                    else f"; shipped specs: {', '.join(shipped)}")
            raise ConfigError(f"no experiment spec {str(path_or_name)!r} (not a file, not a "
                              f"shipped spec){hint}")
        path = shipped[str(path_or_name)]
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: not UTF-8 text (byte {e.start}); save it "
                          "as UTF-8") from e
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e
    return spec_from_dict(data, source=str(path))


def shipped_specs() -> dict[str, Path]:
    """The specs in zoo_configs/experiments/, by name (file stem), sorted."""
    folder = resources.files("pairzoo.zoo_configs") / SPECS_FOLDER
    if not folder.is_dir():
        return {}
    return {entry.name.removesuffix(".toml"): Path(str(entry))
            for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}


def specs_for_report(report: str) -> list[ExperimentSpec]:
    """The shipped specs of one report, named by its file name (with or without .txt), its
    number (`001`, `1`), an alias (an author's name), or one spec's own name."""
    key = report.strip().lower().removesuffix(".txt")
    if key.isdigit():
        key = f"{int(key):03d}"
    specs = [load_spec(name) for name in shipped_specs()]
    chosen = [s for s in specs if key in (s.name.lower(), s.report.lower().removesuffix(".txt"),
                                          s.report[:3], *(a.lower() for a in s.aliases))]
    if not chosen:
        known = sorted({s.report[:3] for s in specs if s.report} | {s.name for s in specs})
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
        raise ConfigError(f"no shipped experiment for report {report!r}{hint}")
    return chosen


def parse_values(text: str, option: str = "--grid") -> tuple[str, list]:
    """`KEY=V1,V2,...` from the command line; values read as TOML (true, 1e-3, [32, 64], 'x'),
    bare words as strings (head=mlp,argmax)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise ConfigError(f"{option} takes KEY=V1,V2 (e.g. share_weights=true,false); "
                          f"got {text!r}")
    try:
        values = tomllib.loads(f"v = [{raw}]")["v"]
    except tomllib.TOMLDecodeError:
        values = [word.strip() for word in raw.split(",") if word.strip()]
    return key.strip(), values
