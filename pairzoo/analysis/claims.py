"""A report's claims, checked on our runs: holds, does not hold, or undecided at 95 %.

Each `[[claim]]` of a spec becomes one or more checks. A check compares a linear contrast of
cell means (pairzoo.analysis.effects.CellMeans: OLS on cell means, HC3 errors) with a
bound, in a direction: "LeNet5 with both is best" is one check per other cell (its mean minus
that cell's < 0); "aux lowers error 2-3 times" is no-aux - 2 x aux > 0 and no-aux - 3 x aux
< 0. Spread claims use the Brown-Forsythe test (scipy's `levene`, median-centred).

The p-values of all checks of one table are adjusted together by Holm's method. A check holds
when its adjusted p < 0.05 with the estimate on the claimed side of the bound, does not hold
when p < 0.05 on the other side, and is undecided otherwise. A claim holds when all its checks
hold, does not hold when any does not, and is undecided otherwise.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pairzoo.analysis import rows
from pairzoo.analysis.effects import ALPHA, CellMeans, holm
from pairzoo.experiments.spec import Claim, ExperimentSpec, _same, cell_label, format_level

HOLDS, FAILS, UNDECIDED, UNTESTED = "holds", "does not hold", "undecided", "not tested"
MARKS = {HOLDS: "✓", FAILS: "✗", UNDECIDED: "?"}  # per check, in the numbers column
LOWER_IS_BETTER = ("test_error", "train_seconds")
METHOD = ("checks: contrasts of cell means (OLS, HC3 errors) or Brown-Forsythe tests; "
          "p-values Holm-adjusted over the {n} checks of this table's claims; a check holds "
          "when p < 0.05 on the claimed side")


@dataclass
class Check:
    claim: int
    scope: str  # which cells, e.g. "siamese_lenet5, share_weights=no"
    test: str  # what is tested, e.g. "A − B < 0"
    shown: str  # the estimate as a person reads it
    estimate: float  # compared with `bound` in direction `side`
    bound: float
    side: str  # "<" or ">"
    low: float = float("nan")  # 95 % CI of `estimate` (NaN for spread tests)
    high: float = float("nan")
    p: float = float("nan")
    verdict: str = ""
    p_holm: float = float("nan")
    extra: dict = field(default_factory=dict)


def matches(cell: dict, selector: dict) -> bool:
    return all(any(_same(cell.get(key), level) for level in
                   (wanted if isinstance(wanted, list) else [wanted]))
               for key, wanted in selector.items())


def _groups(spec: ExperimentSpec, claim: Claim) -> list[tuple[str, list[dict]]]:
    """The cells of each combination of the claim's `per` axes (one group without `per`)."""
    cells = [c for c in spec.cells() if matches(c, claim.among)] if claim.among else spec.cells()
    if not claim.per:
        return [("", cells)]
    groups: dict[tuple, list[dict]] = {}
    for cell in cells:
        key = tuple(cell[axis] for axis in claim.per)
        groups.setdefault(key, []).append(cell)
    return [(", ".join(_scope_part(a, v) for a, v in zip(claim.per, key, strict=True)), members)
            for key, members in groups.items()]


def _scope_part(axis: str, level) -> str:
    return str(level) if axis == "model" else f"{axis}={format_level(level)}"


def _short(cells: list[dict], claim: Claim, spec: ExperimentSpec) -> str:
    """A cell named by its levels outside the claim's `per` axes (the scope names those);
    the model only where the table has several."""
    if len(cells) > 1:
        return f"mean of {len(cells)} cells"
    hidden = {*claim.per, *(["model"] if len(spec.models) == 1 else [])}
    return " ".join(_scope_part(k, v) for k, v in cells[0].items() if k not in hidden)


def _join(scope: str, text: str) -> str:
    return f"{scope}: {text}" if scope and text else scope or text


def _mean_weights(cells: list[dict], scale: float = 1.0) -> dict[str, float]:
    return {cell_label(c): scale / len(cells) for c in cells}


def _add(*parts: dict[str, float]) -> dict[str, float]:
    total: dict[str, float] = {}
    for part in parts:
        for label, w in part.items():
            total[label] = total.get(label, 0.0) + w
    return total


def _num(x: float, signed: bool = False) -> str:
    if not np.isfinite(x):
        return "-"
    text = f"{x:+.2f}" if signed else f"{x:.2f}"
    return text.replace("-", "−").replace("+0.00", "0.00").replace("−0.00", "0.00")


def _bound(x: float) -> str:
    return f"{x + 0.0:g}".replace("-", "−")  # + 0.0: no "−0"


def _linear(fit: CellMeans, index: int, scope: str, weights: dict, bound: float, side: str,
            test: str, shown=None) -> Check:
    estimate = fit.test(weights, bound)
    text = shown(estimate) if shown else (f"{_num(estimate.effect, True)} "
                                          f"[{_num(estimate.low, True)}, "
                                          f"{_num(estimate.high, True)}]")
    return Check(index, scope, test, text, estimate.effect, bound, side, estimate.low,
                 estimate.high, estimate.p)


def _pair_checks(fit: CellMeans, index: int, claim: Claim, scope: str, a: list[dict],
                 b: list[dict] | None) -> list[Check]:
    """lower / higher / similar / not_lower / not_higher between cells `a` and `b` (or the
    claim's value). Estimates are A − B in points (A itself against a value)."""
    wa = _mean_weights(a)
    wb = _mean_weights(b) if b else {}
    offset = 0.0 if b else claim.value  # A − value < x  is  A < value + x
    diff = _add(wa, {k: -w for k, w in wb.items()})
    name = "A − B" if b else "A"
    kind, checks = claim.kind, []

    def level(estimate):  # A itself against a number: no sign
        return f"{_num(estimate.effect)} [{_num(estimate.low)}, {_num(estimate.high)}]"

    def linear(weights, bound, side, shown=None):
        test = f"{name} {side} {_bound(bound)}"
        checks.append(_linear(fit, index, scope, weights, bound, side, test,
                              shown or (None if b else level)))

    if kind in ("lower", "higher"):
        sign, side, back = (-1, "<", ">") if kind == "lower" else (1, ">", "<")
        least, most = claim.by or (0.0, None)
        if claim.by or not claim.times:
            linear(diff, offset + sign * least, side)
        if most is not None:
            linear(diff, offset + sign * most, back)
        if claim.times:
            # "A is 2-3 times lower than B": B − 2A > 0 and B − 3A < 0 (linear in the means)
            big, small = (wb, wa) if kind == "lower" else (wa, wb)
            ratio = "B/A" if kind == "lower" else "A/B"

            def ratio_text(_, big=big, small=small):
                num = sum(fit.mean(k) * w for k, w in big.items())
                den = sum(fit.mean(k) * w for k, w in small.items())
                return f"{ratio} = {num / den:.2f}" if den else f"{ratio} = -"

            for factor, side in zip(claim.times, (">", "<"), strict=True):
                if factor is not None:
                    weights = _add(big, {k: -factor * w for k, w in small.items()})
                    check = _linear(fit, index, scope, weights, 0.0, side,
                                    f"{ratio} {'≥' if side == '>' else '≤'} {factor:g}",
                                    ratio_text)
                    checks.append(check)
    elif kind == "similar":
        linear(diff, offset - claim.margin, ">")
        linear(diff, offset + claim.margin, "<")
    elif kind == "not_lower":
        linear(diff, offset - claim.margin, ">")
    elif kind == "not_higher":
        linear(diff, offset + claim.margin, "<")
    return checks


def _spread_check(frame: pd.DataFrame, index: int, claim: Claim, scope: str, a: list[dict],
                  b: list[dict]) -> Check:
    from scipy import stats

    def values(cells):
        """Each run's distance from its own cell's median: cells pooled by their spread
        alone, never by the differences between their means."""
        labels = {cell_label(c) for c in cells}
        if not len(frame):
            return np.array([])
        part = frame[frame["cell_label"].isin(labels)]
        metric = pd.to_numeric(part[claim.metric], errors="coerce")
        return (metric - metric.groupby(part["cell_label"]).transform("median")).dropna(
        ).to_numpy()

    xa, xb = values(a), values(b)
    if len(xa) < 2 or len(xb) < 2:
        return Check(index, scope, "sd A > sd B", "-", float("nan"), 1.0, ">")
    sa, sb = float(np.std(xa, ddof=1)), float(np.std(xb, ddof=1))  # about each cell's median
    p = float(stats.levene(xa, xb, center="median").pvalue)
    ratio = sa / sb if sb else float("inf")
    return Check(index, scope, "sd A > sd B", f"sd {sa:.2f} against {sb:.2f}", ratio, 1.0,
                 ">", p=p)


def _failures(frame: pd.DataFrame, index: int, claim: Claim, spec: ExperimentSpec,
              cells: list[dict], scope: str) -> Check:
    """`frame`: every run, failed ones included."""
    labels = {cell_label(c) for c in cells}
    part = frame[frame["cell_label"].isin(labels)] if len(frame) else frame
    total, failed = len(part), 0
    if total:
        metric = spec.converged.metric
        converged = (spec.converged.holds(part[metric]) if metric in part
                     else pd.Series(False, index=part.index))
        failed = int((~converged | (part["status"] != rows.OK)).sum())
    verdict = (HOLDS if failed == claim.count else FAILS) if total else UNTESTED
    return Check(index, scope, f"runs failing {spec.converged.label} = {claim.count}",
                 f"{failed} of {total} runs fail {spec.converged.label}", failed, claim.count,
                 "=", verdict=verdict)


def _checks(spec: ExperimentSpec, every: pd.DataFrame, fits: dict, index: int,
            claim: Claim) -> list[Check]:
    """`every`: all runs (normalised), failed ones included."""
    if claim.kind == "untested":
        return []
    frame = rows.ok(every) if len(every) else every
    if claim.metric not in fits:
        fits[claim.metric] = CellMeans(frame, claim.metric, [cell_label(c) for c in spec.cells()])
    fit = fits[claim.metric]
    checks = []
    for scope, cells in _groups(spec, claim):
        a = [c for c in cells if matches(c, claim.cell)]
        if not a:
            continue
        if claim.kind == "failures":
            checks.append(_failures(every, index, claim, spec, a, scope))
            continue
        if claim.kind in ("best", "worst"):
            lower = (claim.kind == "best") == (claim.metric in LOWER_IS_BETTER)
            for winner in a:
                for other in (c for c in cells if not matches(c, claim.cell)):
                    who = (f"{_short([winner], claim, spec)} vs " if len(a) > 1 else "vs ") + \
                        _short([other], claim, spec)
                    weights = _add(_mean_weights([winner]), _mean_weights([other], -1.0))
                    side = "<" if lower else ">"
                    checks.append(_linear(fit, index, _join(scope, who), weights, 0.0, side,
                                          f"A − B {side} 0"))
            continue
        b = [c for c in cells if matches(c, claim.than)] if claim.than else None
        if claim.than and not b:
            continue
        each = claim.each and b and (len(a) > 1 or len(b) > 1)
        pairs = ([([x], [y]) for x, y in itertools.product(a, b) if x is not y] if each
                 else [(a, b)])
        for x, y in pairs:
            who = _join(scope, f"{_short(x, claim, spec)} vs {_short(y, claim, spec)}"
                        if each else "")
            if claim.kind == "more_variable":
                checks.append(_spread_check(frame, index, claim, who, x, y))
            else:
                checks += _pair_checks(fit, index, claim, who, x, y)
    return checks


def numbers(checks: list[Check]) -> str:
    """The checks as a person reads them: each estimate once, then its tests."""
    groups: dict[tuple[str, str], list[Check]] = {}
    for check in checks:
        groups.setdefault((check.scope, check.shown), []).append(check)
    parts = []
    for (scope, shown), members in groups.items():
        tests = "; ".join(f"{c.test} {MARKS.get(c.verdict, '')}, Holm p {_p(c.p_holm)}"
                          for c in members if np.isfinite(c.p_holm))
        parts.append(_join(scope, shown) + (f" ({tests})" if tests else ""))
    return "; ".join(parts)


def _verdict(check: Check) -> str:
    if check.verdict:
        return check.verdict
    if not (np.isfinite(check.p_holm) and np.isfinite(check.estimate)):
        return UNDECIDED if np.isfinite(check.estimate) else UNTESTED
    if check.p_holm >= ALPHA:
        return UNDECIDED
    above = check.estimate > check.bound
    return HOLDS if above == (check.side == ">") else FAILS


def _claim_verdict(verdicts: list[str]) -> str:
    if not verdicts or all(v == UNTESTED for v in verdicts):
        return UNTESTED
    if FAILS in verdicts:
        return FAILS
    return HOLDS if all(v == HOLDS for v in verdicts) else UNDECIDED


def check_claims(spec: ExperimentSpec, frame: pd.DataFrame) -> tuple[pd.DataFrame,
                                                                     pd.DataFrame]:
    """(claims, checks): one row per claim with its verdict and numbers, one per check."""
    frame = rows.normalise(frame) if len(frame) else frame
    fits: dict[str, CellMeans] = {}
    checks = [c for i, claim in enumerate(spec.claims) for c in _checks(spec, frame, fits, i,
                                                                         claim)]
    adjusted = holm([c.p for c in checks]) if checks else []
    for check, p in zip(checks, adjusted, strict=True):
        check.p_holm = p
        check.verdict = _verdict(check)
    records = []
    for i, claim in enumerate(spec.claims):
        mine = [c for c in checks if c.claim == i]
        verdict = _claim_verdict([c.verdict for c in mine])
        records.append({"claim": claim.text, "kind": claim.kind, "metric": claim.metric,
                        "verdict": verdict, "checks": len(mine),
                        "held": sum(c.verdict == HOLDS for c in mine),
                        "numbers": claim.reason if claim.kind == "untested" else numbers(mine),
                        "note": claim.note})
    claims = pd.DataFrame(records, columns=["claim", "kind", "metric", "verdict", "checks",
                                            "held", "numbers", "note"])
    table = pd.DataFrame([{"claim": spec.claims[c.claim].text, "scope": c.scope,
                           "test": c.test, "estimate": c.estimate, "shown": c.shown,
                           "ci low": c.low, "ci high": c.high, "bound": c.bound,
                           "p": c.p, "p holm": c.p_holm, "verdict": c.verdict}
                          for c in checks],
                         columns=["claim", "scope", "test", "estimate", "shown", "ci low",
                                  "ci high", "bound", "p", "p holm", "verdict"])
    n = int(np.isfinite(table["p"].astype(float)).sum()) if len(table) else 0
    claims.attrs["method"] = table.attrs["method"] = METHOD.format(n=n)
    return claims, table


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
