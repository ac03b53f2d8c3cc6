"""Tables from store rows with pandas: mean, std, 95 % CI and count per cell, beside the
report's figure.

Standard deviations are the sample std (ddof = 1), as PyTorch's `Tensor.std()` the reports
used. Each mean has a 95 % t interval (scipy: `ttest_1samp(...).confidence_interval()` over
the cell's runs; for the report, `t.interval` from its mean, std and run count), so ours and
theirs can be read as overlapping intervals. A cell is flagged when our mean lies outside the
report's mean +- 2 std; where a report gives no std (004's Table 1), our own std stands in,
and the table says so. Failed runs (`status` other than ok) are counted, never averaged; a
spec's `[converged]` criterion adds, for each cell with a run that fails it, the same cell over
its converged runs only. Figures are printed at two decimals throughout.
"""

from __future__ import annotations

import math

import pandas as pd

from pairzoo.analysis import rows
from pairzoo.experiments.plan import PlannedRun
from pairzoo.experiments.spec import ExperimentSpec, format_level

LABELS = {"test_error": "test error %", "test_accuracy": "accuracy %", "f1": "F1 %",
          "auc": "AUC %", "digit_accuracy": "digit accuracy %"}
CONFIDENCE = 0.95
ALL_RUNS = "all"
DECIMALS = 2


def mean_interval(values) -> tuple[float, float]:
    """95 % t interval of the mean of `values` (NaN with fewer than two)."""
    from scipy import stats

    values = pd.Series(values, dtype=float).dropna()
    if len(values) < 2:
        return float("nan"), float("nan")
    if values.std(ddof=1) == 0:
        return float(values.iloc[0]), float(values.iloc[0])
    interval = stats.ttest_1samp(values, 0.0).confidence_interval(CONFIDENCE)
    return float(interval.low), float(interval.high)


def report_interval(mean, std, runs) -> tuple[float, float]:
    """95 % t interval of a report's mean from its std and run count."""
    from scipy import stats

    if pd.isna(mean) or pd.isna(std) or not runs or runs < 2:
        return float("nan"), float("nan")
    low, high = stats.t.interval(CONFIDENCE, runs - 1, loc=mean, scale=std / math.sqrt(runs))
    return float(low), float(high)


def _cell_stats(part: pd.DataFrame, metrics: list[str]) -> dict:
    ok = rows.ok(part)
    stats = {"runs": len(part), "diverged": int((part["status"] != rows.OK).sum())}
    for metric in metrics:
        values = (ok[metric] if metric in ok else pd.Series(dtype=float)).dropna()
        low, high = mean_interval(values)
        stats.update({f"{metric} mean": values.mean() if len(values) else float("nan"),
                      f"{metric} std": values.std(ddof=1) if len(values) > 1 else float("nan"),
                      f"{metric} count": len(values), f"{metric} ci low": low,
                      f"{metric} ci high": high})
    return stats


def summarise(frame: pd.DataFrame, metrics: list[str], order: list[str] | None = None,
              cells: dict[str, dict] | None = None, converged=None) -> pd.DataFrame:
    """One row per cell (`cell_label`): its axes, `runs`, `diverged`, `runs used`, and
    `<metric> mean/std/count/ci low/ci high` over the runs that finished normally.

    `order` lists the cells to show (cells with no finished run yet show runs = 0); `cells`
    gives each label's axes (default: the first stored row's `cell`); `converged` (a
    spec.Converged) adds a converged-runs-only row after each cell with a run failing it."""
    frame = (rows.normalise(frame) if len(frame)
             else pd.DataFrame(columns=["cell_label", "cell", "status"]))
    if cells is None:
        cells = dict(zip(frame["cell_label"], frame["cell"], strict=True))
    order = order or list(dict.fromkeys(frame["cell_label"]))
    records = []
    for label in order:
        part = frame[frame["cell_label"] == label]
        axes = cells.get(label, {})
        records.append({"cell": label, **axes, "runs used": ALL_RUNS,
                        **_cell_stats(part, metrics)})
        # a cell whose runs never report the metric (a model without digit outputs) has no
        # converged view; a failed run (status other than ok) never counts as converged
        if (converged is not None and converged.metric in part
                and rows.ok(part)[converged.metric].notna().any()):
            keep = converged.holds(part[converged.metric]) & (part["status"] == rows.OK)
            if not keep.all():
                stats = _cell_stats(part[keep], metrics)
                stats["runs"] = f"{int(keep.sum())} of {len(part)}"
                records.append({"cell": f"{label} (converged runs)", **axes,
                                "runs used": f"converged: {converged.label}", **stats})
    return pd.DataFrame(records)


def plan_summary(spec: ExperimentSpec, plan: list[PlannedRun], frame: pd.DataFrame,
                 metrics: list[str] | None = None) -> pd.DataFrame:
    """The table of one experiment's plan (every planned cell, in the spec's order)."""
    cells = {run.label: run.cell for run in plan}
    summary = summarise(frame, metrics or spec.metrics, order=list(cells), cells=cells,
                        converged=spec.converged)
    return with_report(summary, spec, metrics or spec.metrics)


def with_report(summary: pd.DataFrame, spec: ExperimentSpec, metrics: list[str]) -> pd.DataFrame:
    """Adds `<metric> report`, `report std`, `report ci low/high`, `z` ((ours - theirs) /
    std), `outside` (beyond their mean +- 2 std) and `ci overlap`."""
    summary = summary.copy()
    cells = summary[[c for c in spec.axis_names if c in summary]].to_dict("records")
    found = [spec.report_for(cell) for cell in cells]
    for metric in metrics:
        figures = [(rc.figures.get(metric) if rc else None) for rc in found]
        theirs = pd.Series([f[0] if f else None for f in figures], dtype=float)
        their_std = pd.Series([f[1] if f else None for f in figures], dtype=float)
        their_runs = [(rc.runs or spec.runs) if rc else 0 for rc in found]
        intervals = [report_interval(m, s, n)
                     for m, s, n in zip(theirs, their_std, their_runs, strict=True)]
        missing = pd.Series(float("nan"), index=summary.index)
        ours = summary.get(f"{metric} mean", missing)
        sigma = their_std.fillna(summary.get(f"{metric} std", missing))
        summary[f"{metric} report"] = theirs
        summary[f"{metric} report std"] = their_std
        summary[f"{metric} report ci low"] = [low for low, _ in intervals]
        summary[f"{metric} report ci high"] = [high for _, high in intervals]
        summary[f"{metric} sigma from"] = their_std.notna().map({True: "report", False: "ours"})
        summary[f"{metric} z"] = (ours - theirs) / sigma
        summary[f"{metric} outside"] = ((ours - theirs).abs() > 2 * sigma).where(
            theirs.notna() & ours.notna() & sigma.notna())
        low, high = summary.get(f"{metric} ci low", missing), summary.get(f"{metric} ci high",
                                                                          missing)
        overlap = (low <= summary[f"{metric} report ci high"]) & (
            summary[f"{metric} report ci low"] <= high)
        summary[f"{metric} ci overlap"] = overlap.where(
            low.notna() & summary[f"{metric} report ci low"].notna())
    summary["note"] = [(rc.note if rc else "") for rc in found]
    return summary


# --- presentation ----------------------------------------------------------------------------


def _number(value) -> str:
    return "-" if pd.isna(value) else f"{value:.{DECIMALS}f}"


def _mean_std(mean, std) -> str:
    if pd.isna(mean):
        return "-"
    return _number(mean) + ("" if pd.isna(std) else f" ± {_number(std)}")


def _interval(low, high) -> str:
    return "-" if pd.isna(low) else f"[{_number(low)}, {_number(high)}]"


def display_frame(summary: pd.DataFrame, metrics: list[str], axes: list[str]) -> pd.DataFrame:
    """Strings for a person: axes, runs, ours (mean ± std, 95 % CI) and, with a report,
    theirs (mean ± std, 95 % CI), z and whether ours is within their mean ± 2 std."""
    shown = pd.DataFrame({axis: summary[axis].map(format_level) for axis in axes
                          if axis in summary})
    if "runs used" in summary and (summary["runs used"] != ALL_RUNS).any():
        shown["runs used"] = summary["runs used"]
    shown["runs"] = summary["runs"].astype(str)
    if "diverged" in summary and summary["diverged"].fillna(0).astype(int).any():
        total = pd.to_numeric(summary["runs"], errors="coerce")
        shown["diverged"] = [f"{int(d)} of {int(n)}" if pd.notna(n) else "-"
                             for d, n in zip(summary["diverged"], total, strict=True)]
    one = len(metrics) == 1
    for metric in metrics:
        label = LABELS.get(metric, metric)
        if f"{metric} mean" not in summary:
            continue
        shown[f"{label} (ours)"] = [_mean_std(m, s) for m, s in
                                    zip(summary[f"{metric} mean"], summary[f"{metric} std"],
                                        strict=True)]
        shown["ours 95 % CI" if one else f"{label} ours 95 % CI"] = [
            _interval(lo, hi) for lo, hi in zip(summary[f"{metric} ci low"],
                                                summary[f"{metric} ci high"], strict=True)]
        if f"{metric} report" in summary and summary[f"{metric} report"].notna().any():
            shown[f"{label} (report)"] = [
                _mean_std(m, s) for m, s in zip(summary[f"{metric} report"],
                                                summary[f"{metric} report std"], strict=True)]
            shown["report 95 % CI" if one else f"{label} report 95 % CI"] = [
                _interval(lo, hi) for lo, hi in zip(summary[f"{metric} report ci low"],
                                                    summary[f"{metric} report ci high"],
                                                    strict=True)]
            shown["Δ/σ" if one else f"{label} Δ/σ"] = summary[f"{metric} z"].map(
                lambda z: "-" if pd.isna(z) else f"{z:+.1f}")
            shown["within 2σ" if one else f"{label} within 2σ"] = (
                summary[f"{metric} outside"].map(
                    lambda o: "-" if pd.isna(o) else ("NO" if o else "yes")))
    return shown


def outside_rows(summary: pd.DataFrame, metrics: list[str]) -> pd.Series:
    """Cells (all runs) outside the report's mean ± 2 std; converged-only rows are shown for
    comparison and never counted."""
    flags = [summary[f"{m} outside"] for m in metrics if f"{m} outside" in summary]
    if not flags:
        return pd.Series(False, index=summary.index)
    outside = pd.concat(flags, axis=1).fillna(False).astype(bool).any(axis=1)
    if "runs used" in summary:
        outside &= summary["runs used"] == ALL_RUNS
    return outside


def rich_table(shown: pd.DataFrame, title: str, highlight: pd.Series | None = None,
               width: int | None = None, keep: list[str] | None = None,
               droppable: list[str] | None = None):
    """A rich table of `shown` that never cuts a name or a number (pairzoo.terminal). On a
    terminal `width` columns wide, columns are left out until every word fits: `droppable` in
    that order (default: the 95 % CIs, then from the right), never `keep` (default: a results
    table's axes, runs and first "(ours)" column). Where those alone are too wide, the axes
    join into one `cell` column that wraps between its levels."""
    from pairzoo.terminal import fit

    columns = list(shown.columns)
    counts = [c for c in ("runs used", "runs") if c in columns]
    axes = columns[:columns.index(counts[0])] if counts else []
    if keep is None:
        ours = [c for c in columns if "(ours)" in c][:1]
        keep = [*axes, "runs used", "runs", "diverged", *ours]
    if droppable is None:
        rest = [c for c in reversed(columns) if c not in keep]
        droppable = [c for c in rest if "CI" in c] + [c for c in rest if "CI" not in c]
    table, fits = fit(_builder(shown, title, highlight), _texts(shown), width, droppable)
    if fits or len(axes) < 2:
        return table
    merged = shown.drop(columns=axes)
    merged.insert(0, "cell", [" ".join(f"{axis}={value}" if i else str(value)
                                       for i, (axis, value) in enumerate(zip(axes, values,
                                                                             strict=True)))
                              for values in shown[axes].itertuples(index=False)])
    return fit(_builder(merged, title, highlight), _texts(merged), width,
               [c for c in droppable if c in merged])[0]


def _texts(shown: pd.DataFrame) -> dict[str, list[str]]:
    return {column: [str(v) for v in shown[column]] for column in shown.columns}


def _builder(shown: pd.DataFrame, title: str, highlight: pd.Series | None):
    from rich.table import Table

    def build(columns: list[str]):
        table = Table(title=title, title_justify="left")
        for column in columns:
            numeric = column in ("runs", "diverged") or "%" in column or "Δ/σ" in column
            table.add_column(column, justify="right" if numeric else "left")
        for index, values in enumerate(shown[columns].itertuples(index=False)):
            outside = highlight is not None and bool(highlight.iloc[index])
            table.add_row(*map(str, values), style="red" if outside else None)
        return table

    return build


def markdown(shown: pd.DataFrame) -> str:
    return shown.to_markdown(index=False, disable_numparse=True)  # keep "+0.8", "yes"


# symbols a LaTeX document without unicode fonts cannot typeset, in the order they are replaced
_LATEX = (("Δ/σ", r"$\Delta/\sigma$"), ("σ", r"$\sigma$"), ("±", r"$\pm$"), ("≥", r"$\geq$"),
          ("≤", r"$\leq$"), ("−", r"$-$"), ("×", r"$\times$"), ("→", r"$\to$"))


def latex(shown: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (pandas' Styler.to_latex): text columns left, numbers right."""
    numeric = [c in ("runs", "diverged") or "%" in c or "σ" in c or "CI" in c
               for c in shown.columns]
    styler = (shown.style.hide(axis="index").format(escape="latex")
              .format_index(escape="latex", axis=1))
    caption = caption.replace("%", r"\%").replace("_", r"\_").replace("&", r"\&")
    text = styler.to_latex(hrules=True, caption=caption, label=label,
                           position_float="centering",
                           column_format="".join("r" if n else "l" for n in numeric))
    for symbol, command in _LATEX:
        text = text.replace(symbol, command)
    return text
