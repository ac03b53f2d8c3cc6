"""Tables from store rows with pandas: mean, std and count per cell, beside the report's figure.

Standard deviations are the sample std (ddof = 1), as PyTorch's `Tensor.std()` the reports
used. A cell is flagged when our mean lies outside the report's mean +- 2 std; where a report
gives no std (004's Table 1), our own std stands in, and the table says so.
"""

from __future__ import annotations

import pandas as pd

from pairzoo.experiments.plan import PlannedRun
from pairzoo.experiments.spec import ExperimentSpec, format_level

# Stored as fractions (as pairzoo.evaluation reports them); tables show every metric in percent.
PERCENT = ("test_accuracy", "f1", "auc", "digit_accuracy")
LABELS = {"test_error": "test error %", "test_accuracy": "accuracy %", "f1": "F1 %",
          "auc": "AUC %", "digit_accuracy": "digit accuracy %"}


def in_percent(frame: pd.DataFrame) -> pd.DataFrame:
    scaled = frame.copy()
    for metric in PERCENT:
        if metric in scaled:
            scaled[metric] = pd.to_numeric(scaled[metric], errors="coerce") * 100
    return scaled


def summarise(frame: pd.DataFrame, metrics: list[str], order: list[str] | None = None,
              cells: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per cell (`cell_label`): its axes, `runs`, and `<metric> mean/std/count`.

    `order` lists the cells to show (cells with no finished run yet show runs = 0); `cells`
    gives each label's axes (default: the first stored row's `cell`)."""
    frame = in_percent(frame) if len(frame) else pd.DataFrame(columns=["cell_label", "cell"])
    present = [m for m in metrics if m in frame]
    grouped = frame.groupby("cell_label", sort=False)
    stats = grouped[present].agg(["mean", "std", "count"]) if present else pd.DataFrame()
    stats.columns = [f"{m} {stat}" for m, stat in stats.columns]
    stats["runs"] = grouped.size()
    order = order or list(stats.index)
    stats = stats.reindex(order)
    stats["runs"] = stats["runs"].fillna(0).astype(int)
    for metric in metrics:  # a metric no run has yet: an empty column, so the report's shows
        if f"{metric} mean" not in stats:
            stats[[f"{metric} mean", f"{metric} std"]] = float("nan")
            stats[f"{metric} count"] = 0
    for metric in present:
        stats[f"{metric} count"] = stats[f"{metric} count"].fillna(0).astype(int)
    if cells is None:
        cells = dict(zip(frame["cell_label"], frame["cell"], strict=True))
    axes = pd.DataFrame([cells.get(label, {}) for label in order], index=order)
    return pd.concat([axes, stats], axis=1).rename_axis("cell").reset_index()


def plan_summary(spec: ExperimentSpec, plan: list[PlannedRun], frame: pd.DataFrame,
                 metrics: list[str] | None = None) -> pd.DataFrame:
    """The table of one experiment's plan (every planned cell, in the spec's order)."""
    cells = {run.label: run.cell for run in plan}
    summary = summarise(frame, metrics or spec.metrics, order=list(cells), cells=cells)
    return with_report(summary, spec, metrics or spec.metrics)


def with_report(summary: pd.DataFrame, spec: ExperimentSpec, metrics: list[str]) -> pd.DataFrame:
    """Adds `<metric> report`, `report std`, `z` ((ours - theirs) / std) and `outside`."""
    summary = summary.copy()
    cells = summary[[c for c in spec.axis_names if c in summary]].to_dict("records")
    for metric in metrics:
        figures = [(rc.figures.get(metric) if rc else None)
                   for rc in (spec.report_for(cell) for cell in cells)]
        theirs = pd.Series([f[0] if f else None for f in figures], dtype=float)
        their_std = pd.Series([f[1] if f else None for f in figures], dtype=float)
        missing = pd.Series(float("nan"), index=summary.index)
        ours = summary.get(f"{metric} mean", missing)
        sigma = their_std.fillna(summary.get(f"{metric} std", missing))
        summary[f"{metric} report"] = theirs
        summary[f"{metric} report std"] = their_std
        summary[f"{metric} sigma from"] = their_std.notna().map({True: "report", False: "ours"})
        summary[f"{metric} z"] = (ours - theirs) / sigma
        summary[f"{metric} outside"] = ((ours - theirs).abs() > 2 * sigma).where(
            theirs.notna() & ours.notna() & sigma.notna())
    summary["note"] = [(spec.report_for(cell).note if spec.report_for(cell) else "")
                       for cell in cells]
    return summary


# --- presentation ----------------------------------------------------------------------------


def _mean_std(mean, std, decimals: int = 2) -> str:
    if pd.isna(mean):
        return "-"
    return f"{mean:.{decimals}f}" + ("" if pd.isna(std) else f" ± {std:.{decimals}f}")


def display_frame(summary: pd.DataFrame, metrics: list[str], axes: list[str]) -> pd.DataFrame:
    """Strings for a person: axes, runs, ours (mean ± std) and, with a report, theirs, z and
    whether ours is within their mean ± 2 std."""
    shown = pd.DataFrame({axis: summary[axis].map(format_level) for axis in axes
                          if axis in summary})
    shown["runs"] = summary["runs"].astype(str)
    for metric in metrics:
        label = LABELS.get(metric, metric)
        mean, std = summary.get(f"{metric} mean"), summary.get(f"{metric} std")
        if mean is None:
            continue
        shown[f"{label} (ours)"] = [_mean_std(m, s) for m, s in zip(mean, std, strict=True)]
        if f"{metric} report" in summary and summary[f"{metric} report"].notna().any():
            theirs = summary[f"{metric} report"]
            their_std = summary[f"{metric} report std"]
            shown[f"{label} (report)"] = [_as_printed(m, s)
                                          for m, s in zip(theirs, their_std, strict=True)]
            one = len(metrics) == 1
            shown["Δ/σ" if one else f"{label} Δ/σ"] = summary[f"{metric} z"].map(
                lambda z: "-" if pd.isna(z) else f"{z:+.1f}")
            shown["within 2σ" if one else f"{label} within 2σ"] = (
                summary[f"{metric} outside"].map(
                    lambda o: "-" if pd.isna(o) else ("NO" if o else "yes")))
    return shown


def _as_printed(mean, std) -> str:
    """A report's figure with the digits it printed (17.469, 0.5696, 6.08)."""
    if pd.isna(mean):
        return "-"
    return f"{mean:.6g}" + ("" if pd.isna(std) else f" ± {std:.6g}")


def outside_rows(summary: pd.DataFrame, metrics: list[str]) -> pd.Series:
    flags = [summary[f"{m} outside"] for m in metrics if f"{m} outside" in summary]
    if not flags:
        return pd.Series(False, index=summary.index)
    return pd.concat(flags, axis=1).fillna(False).astype(bool).any(axis=1)


def rich_table(shown: pd.DataFrame, title: str, highlight: pd.Series | None = None):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in shown.columns:
        numeric = column == "runs" or "%" in column or "Δ/σ" in column
        table.add_column(column, justify="right" if numeric else "left")
    for index, values in enumerate(shown.itertuples(index=False)):
        outside = highlight is not None and bool(highlight.iloc[index])
        table.add_row(*map(str, values), style="red" if outside else None)
    return table


def markdown(shown: pd.DataFrame) -> str:
    return shown.to_markdown(index=False, disable_numparse=True)  # keep "+0.8", "yes"
