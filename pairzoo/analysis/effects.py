"""How much each factor changes the error, with its uncertainty: effects, CIs and p-values.

One model per table and metric: ordinary least squares of the metric on one indicator per cell
(so each coefficient is a cell's mean), with HC3 heteroscedasticity-robust errors (cells here
differ in spread up to tenfold) and t intervals on the residual degrees of freedom
(statsmodels). Every effect is a linear contrast of cell means tested with `t_test`:

- a grid axis (sharing, auxiliary loss, batch norm, dropout, head, any axis): each level
  minus the axis's reference level ("off": false, 0, "no"; else the first), per model and
  pooled over models, averaged over the other axes' levels (a main effect);
- interactions where the design is factorial: for two two-level axes the difference of
  differences (how much one factor's effect changes when the other is on), for three the
  difference of that between the third's levels;
- factors the models carry (`[[contrast]]` in the spec: pairs of models that differ in one
  thing, such as two towers against one shared tower), per pair and pooled;
- with no factor at all, each model against the first.

p-values are adjusted for the number of effects in the table by Holm's method (`holm`, which
gives what statsmodels' `multipletests` gives); the 95 % intervals are per effect
(unadjusted). Runs are treated as independent: the pairing of cells by seed is ignored, which
can only widen the intervals. A cell needs two finished runs to enter the fit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pairzoo.analysis import rows
from pairzoo.experiments.spec import Axis, ExperimentSpec, Level, _same, cell_label, format_level

ALPHA = 0.05
METHOD = ("OLS on cell means, HC3 errors; 95 % CIs per effect; p-values Holm-adjusted over "
          "the {n} effects of this table")
FACTOR_NAMES = {"share_weights": "weight sharing", "aux_weight": "auxiliary loss",
                "tower.batchnorm": "batch norm", "dropout": "dropout", "head": "head",
                "model": "model"}
_OFF = (False, 0, "no", "off", "none")


@dataclass(frozen=True)
class Estimate:
    effect: float  # the contrast's value (before subtracting the tested value)
    low: float  # 95 % confidence interval of `effect`
    high: float
    p: float  # two-sided, against the tested value
    df: float

    @classmethod
    def missing(cls) -> Estimate:
        nan = float("nan")
        return cls(nan, nan, nan, nan, nan)


class CellMeans:
    """One metric's cell means from the finished runs, with HC3 covariance."""

    def __init__(self, frame: pd.DataFrame, metric: str, labels: list[str]):
        import statsmodels.api as sm

        values = (frame[["cell_label", metric]].dropna() if metric in frame
                  else pd.DataFrame(columns=["cell_label", metric]))
        values = values[np.isfinite(values[metric].astype(float))]
        counts = values.groupby("cell_label").size()
        self.counts = {label: int(counts.get(label, 0)) for label in labels}
        self.labels = [label for label in labels if self.counts[label] >= 2]
        values = values[values["cell_label"].isin(self.labels)]
        self.result = None
        if self.labels and len(values) > len(self.labels):
            design = pd.get_dummies(pd.Categorical(values["cell_label"],
                                                   categories=self.labels)).astype(float)
            self.result = sm.OLS(values[metric].astype(float).to_numpy(),
                                 design.to_numpy()).fit(cov_type="HC3", use_t=True)

    def missing(self, weights: dict[str, float]) -> list[str]:
        """The cells a contrast needs that have fewer than two finished runs."""
        return [label for label, w in weights.items()
                if w and (self.result is None or label not in self.labels)]

    def mean(self, label: str) -> float:
        if self.result is None or label not in self.labels:
            return float("nan")
        return float(self.result.params[self.labels.index(label)])

    def test(self, weights: dict[str, float], value: float = 0.0) -> Estimate:
        """The contrast sum(w * mean) against `value`; missing cells give NaN."""
        if self.missing(weights):
            return Estimate.missing()
        r = np.array([[weights.get(label, 0.0) for label in self.labels]])
        result = self.result.t_test((r, np.array([value])))
        effect = float(np.squeeze(result.effect))
        if not float(np.squeeze(result.sd)) > 0:  # every run of the cells the same value
            return Estimate(effect, effect, effect, float("nan"), float(result.df_denom))
        low, high = np.squeeze(result.conf_int(alpha=ALPHA))
        return Estimate(effect, float(low), float(high), float(np.squeeze(result.pvalue)),
                        float(result.df_denom))


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values; NaN stays NaN.

    Holm's step-down rule in numpy rather than statsmodels' `multipletests(method="holm")`,
    which gives the same values (tests/test_effects.py compares them) but calls `gc.collect()`
    on every call: 0.2 s in a process holding three trained models, and 39 s of the test
    suite's time (py-spy), where every table and claim set calls it."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]  # smallest first
    # the k-th smallest of m is multiplied by m - k; then made monotone and capped at 1
    stepped = p[order] * np.arange(len(order), 0, -1)
    adjusted[order] = np.minimum(np.maximum.accumulate(stepped), 1.0)
    return adjusted


# --- the design ------------------------------------------------------------------------------


def spec_from_rows(name: str, frame: pd.DataFrame) -> ExperimentSpec:
    """A spec for rows no shipped spec describes: the axes and levels their cells record."""
    cells = list(frame["cell"])
    models = list(dict.fromkeys(c.get("model", "?") for c in cells))
    axes = []
    for key in dict.fromkeys(k for c in cells for k in c if k != "model"):
        levels = list(dict.fromkeys(c.get(key) for c in cells if key in c))
        if all(isinstance(v, (bool, int, float)) for v in levels):
            levels.sort(key=lambda v: (not isinstance(v, bool), v))
        axes.append(Axis(key, tuple(Level(v, {}) for v in levels)))
    return ExperimentSpec(name=name, models=models, axes=axes)


def reference_level(axis: Axis):
    """The level effects are measured from: "off" (false, 0, "no") if the axis has it."""
    for off in _OFF:
        for level in axis.levels:
            if _same(level.label, off) or (isinstance(off, str) and level.label == off):
                return level.label
    return axis.levels[0].label


def factor_name(axis: str) -> str:
    return FACTOR_NAMES.get(axis, axis)


def _sign(cell: dict, axis: str, level, reference) -> int:
    if _same(cell[axis], level):
        return 1
    return -1 if _same(cell[axis], reference) else 0


def _weights(cells: list[dict], signs, scope, order: int = 1) -> dict[str, float]:
    """Contrast weights: `signs(cell)` (+1, -1 or 0) over the cells `scope` keeps, averaged
    over the levels of the axes the contrast does not involve. A main effect has one positive
    cell per combination of those levels; an interaction of `order` factors has 2**(order-1)
    (11 and 00 in 11 - 10 - 01 + 00)."""
    chosen = [(cell, signs(cell)) for cell in cells if scope(cell)]
    combinations = sum(1 for _, s in chosen if s > 0) / 2 ** (order - 1)
    if not combinations:
        return {}
    return {cell_label(cell): s / combinations for cell, s in chosen if s}


def _pooled(per_model: list[dict[str, float]]) -> dict[str, float]:
    pooled: dict[str, float] = {}
    for weights in per_model:
        for label, w in weights.items():
            pooled[label] = pooled.get(label, 0.0) + w / len(per_model)
    return pooled


def _contrasts(spec: ExperimentSpec) -> list[dict]:
    """Every effect of the table as (factor, levels, scope, kind, weights)."""
    cells, models = spec.cells(), spec.models
    found = []

    def add(factor, levels, kind, per_model: dict[str, dict]):
        per_model = {scope: w for scope, w in per_model.items() if w}
        for scope, weights in per_model.items():
            found.append({"factor": factor, "levels": levels, "scope": scope, "kind": kind,
                          "weights": weights})
        if len(per_model) > 1:
            found.append({"factor": factor, "levels": levels, "scope": "pooled", "kind": kind,
                          "weights": _pooled(list(per_model.values()))})

    two_level = [axis for axis in spec.axes if len(axis.levels) == 2]
    for axis in spec.axes:
        reference = reference_level(axis)
        for level in (lv.label for lv in axis.levels if not _same(lv.label, reference)):
            add(factor_name(axis.name), f"{format_level(level)} − {format_level(reference)}",
                "main", {m: _weights(cells, lambda c, a=axis.name, lv=level, r=reference:
                                     _sign(c, a, lv, r), lambda c, m=m: c["model"] == m)
                         for m in models})
    for size in (2, 3):
        for combo in itertools.combinations(two_level, size):
            refs = {axis.name: reference_level(axis) for axis in combo}
            highs = {axis.name: next(lv.label for lv in axis.levels
                                     if not _same(lv.label, refs[axis.name]))
                     for axis in combo}

            def signs(c, combo=combo, refs=refs, highs=highs):
                return math.prod(_sign(c, a.name, highs[a.name], refs[a.name]) for a in combo)

            add(" × ".join(factor_name(a.name) for a in combo), "interaction", "interaction",
                {m: _weights(cells, signs, lambda c, m=m: c["model"] == m, size)
                 for m in models})
    for contrast in spec.contrasts:
        def model_sign(c, pair):
            return 1 if c["model"] == pair[1] else (-1 if c["model"] == pair[0] else 0)

        add(contrast.factor, "with − without", "main",
            {f"{a} → {b}": _weights(cells, lambda c, p=(a, b): model_sign(c, p),
                                    lambda c: True) for a, b in contrast.pairs})
        for axis in two_level:
            reference = reference_level(axis)
            high = next(lv.label for lv in axis.levels if not _same(lv.label, reference))
            add(f"{contrast.factor} × {factor_name(axis.name)}", "interaction", "interaction",
                {f"{a} → {b}": _weights(
                    cells, lambda c, p=(a, b), ax=axis.name, h=high, r=reference:
                    model_sign(c, p) * _sign(c, ax, h, r), lambda c: True, 2)
                 for a, b in contrast.pairs})
    if not found and len(models) > 1:
        first = models[0]
        for model in models[1:]:
            found.append({"factor": "model", "levels": f"{model} − {first}", "scope": model,
                          "kind": "main", "weights": _weights(
                              cells, lambda c, m=model: (c["model"] == m) - (c["model"] == first),
                              lambda c: True)})
    return found


# --- the table -------------------------------------------------------------------------------

EFFECT_COLUMNS = ["factor", "levels", "scope", "kind", "effect", "ci low", "ci high", "p",
                  "p holm", "note"]


def effects_table(spec: ExperimentSpec, frame: pd.DataFrame,
                  metric: str = "test_error") -> pd.DataFrame:
    """Every effect of the table on `metric` (points): estimate, 95 % CI, p and Holm's p."""
    frame = rows.ok(rows.normalise(frame)) if len(frame) else frame
    fit = CellMeans(frame, metric, [cell_label(c) for c in spec.cells()])
    records = []
    for contrast in _contrasts(spec):
        estimate = fit.test(contrast["weights"])
        missing = fit.missing(contrast["weights"])
        note = (f"{len(missing)} cell(s) with fewer than 2 runs: {missing[0]}"
                + (" …" if len(missing) > 1 else "")) if missing else ""
        records.append({**{k: contrast[k] for k in ("factor", "levels", "scope", "kind")},
                        "effect": estimate.effect, "ci low": estimate.low,
                        "ci high": estimate.high, "p": estimate.p, "note": note})
    table = pd.DataFrame(records, columns=[c for c in EFFECT_COLUMNS if c != "p holm"])
    table.insert(len(table.columns) - 1, "p holm", holm(table["p"]) if len(table) else [])
    table.attrs["metric"] = metric
    table.attrs["method"] = METHOD.format(n=int(table["p"].notna().sum()))
    return table
