"""What an experiment leaves behind: its table (CSV for machines, Markdown for people, LaTeX
for papers, a rich table on the terminal), its learning curves, its effects and claim verdicts
with a forest plot, and, before anything runs, its plan and cost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pairzoo.analysis.plots import write_learning_curves
from pairzoo.analysis.tables import (
    ALL_RUNS,
    display_frame,
    latex,
    markdown,
    outside_rows,
    plan_summary,
    rich_table,
    summarise,
)
from pairzoo.destinations import write_aside
from pairzoo.experiments.plan import PlannedRun, TimeModel, format_duration
from pairzoo.experiments.spec import ExperimentSpec
from pairzoo.experiments.store import ResultsStore

CI_NOTE = ("95 % CI: t interval of the mean, over our runs; for the report, from its mean, "
           "std and run count.")


@dataclass
class Table:
    title: str
    summary: pd.DataFrame  # numbers: axes, runs, <metric> mean/std/count[, report, z, outside]
    shown: pd.DataFrame  # the same as strings
    outside: pd.Series  # rows outside the report's mean +- 2 std
    metrics: list[str]
    name: str = ""  # file stem for its CSV, Markdown and curves
    frame: pd.DataFrame | None = None  # the runs behind it

    converged: str = ""  # the spec's convergence criterion and its note, if it has one
    notes: str = ""  # what the spec says under its table

    def rich(self, width: int | None = None):
        """For the terminal: on one `width` columns wide, columns are left out rather than
        a name or a number cut (tables.rich_table)."""
        return rich_table(self.shown, self.title, self.outside, width)

    def body(self, notes: str | None = None) -> str:
        """The table and what it needs said (`notes`, default its spec's), without a
        heading."""
        notes = self.notes if notes is None else notes
        lines = [markdown(self.shown), "", CI_NOTE]
        if self.converged and "runs used" in self.shown:
            lines.append(f"Converged runs only: {self.converged}; the all-runs row counts.")
        lines.append("")
        flagged = self.summary[self.outside]
        if len(flagged):
            lines += ["Cells outside the report's mean ± 2 std: "
                      + "; ".join(flagged["cell"]) + ".", ""]
        every = self.summary.get("runs used", pd.Series(ALL_RUNS, index=self.summary.index))
        cell_notes = [f"- {c}: {n}" for c, n, used in zip(
            self.summary["cell"], self.summary.get("note", [""] * len(self.summary)), every,
            strict=False) if n and used == ALL_RUNS]
        if cell_notes:
            lines += ["Notes:", *cell_notes, ""]
        if notes:
            lines += [notes.strip(), ""]
        return "\n".join(lines)

    def markdown(self, notes: str | None = None) -> str:
        return f"## {self.title}\n\n{self.body(notes)}"

    def latex(self) -> str:
        return latex(self.shown, self.title, f"tab:{self.name}")

    def marks(self) -> dict:
        """cell label -> the report's (mean, std or None) test error, for the plots."""
        if "test_error report" not in self.summary:
            return {}
        every = self.summary.get("runs used", pd.Series(ALL_RUNS, index=self.summary.index))
        return {cell: (mean, None if pd.isna(std) else std)
                for cell, mean, std, used in zip(
                    self.summary["cell"], self.summary["test_error report"],
                    self.summary["test_error report std"], every, strict=True)
                if pd.notna(mean) and used == ALL_RUNS}

    def counts(self, metric: str = "test_error") -> dict:
        """Cells (all runs) with a report figure: within 2σ, outside and better, worse."""
        summary = self.summary
        if f"{metric} outside" not in summary:
            return {"cells": 0, "within": 0, "better": 0, "worse": 0}
        every = summary.get("runs used", pd.Series(ALL_RUNS, index=summary.index))
        rated = summary[summary[f"{metric} outside"].notna() & (every == ALL_RUNS)]
        outside = rated[rated[f"{metric} outside"].astype(bool)]
        lower_better = metric == "test_error"
        better = (outside[f"{metric} mean"] < outside[f"{metric} report"]) == lower_better
        return {"cells": len(rated), "within": len(rated) - len(outside),
                "better": int(better.sum()), "worse": int((~better).sum())}


def spec_table(spec: ExperimentSpec, plan: list[PlannedRun], store: ResultsStore,
               frame: pd.DataFrame | None = None, metrics: list[str] | None = None) -> Table:
    """The experiment's table: every planned cell, ours beside the report's figures (of the
    spec's metrics, or `metrics`)."""
    if frame is None:
        from pairzoo.experiments.runner import plan_frame

        frame = plan_frame(plan, store)
    metrics = metrics or spec.metrics
    summary = plan_summary(spec, plan, frame, metrics)
    title = f"{spec.name}: {spec.title}" if spec.title else spec.name
    shown = display_frame(summary, metrics, spec.axis_names)
    converged = (f"{spec.converged.label} ({spec.converged.note})".replace(" ()", "")
                 if spec.converged else "")
    return Table(title, summary, shown, outside_rows(summary, metrics), metrics,
                 spec.name, frame, converged, spec.notes)


def store_tables(store: ResultsStore, metrics: list[str] | None = None,
                 experiment: str = "*") -> list[Table]:
    """Every table a store holds (pairzoo.analysis.stores): each spec's table through its
    plan, as `reproduce --tables-only` gives it (the spec's metrics unless `metrics` names
    others), then the rows outside every plan, per experiment and stage, split by recipe
    (`metrics`, default test error and digit accuracy, where the rows have them)."""
    from pairzoo.analysis.stores import read_store

    planned, leftovers = read_store(store, experiment)
    tables = [spec_table(p.spec, p.plan, store, p.frame, metrics) for p in planned]
    for left in leftovers:
        part = left.frame
        present = [m for m in metrics or STORE_METRICS if m in part and part[m].notna().any()]
        summary = summarise(part, present)
        axes = list(dict.fromkeys(k for cell in part["cell"] for k in cell))
        shown = display_frame(summary, present, axes)
        tables.append(Table(left.title, summary, shown, pd.Series(False, index=summary.index),
                            present, left.name, part))
    return tables


STORE_METRICS = ["test_error", "digit_accuracy"]


def write_table(table: Table, out_dir: str | Path, name: str,
                notes: str | None = None) -> list[Path]:
    """`name`.csv (every number), .md (for people) and .tex (a booktabs table)."""
    out_dir = Path(out_dir)
    csv, md, tex = (out_dir / f"{name}.{ext}" for ext in ("csv", "md", "tex"))
    # each written aside and renamed: a full disk leaves no empty or cut table behind
    write_aside(csv, lambda path: table.summary.to_csv(path, index=False))
    write_aside(md, lambda path: path.write_text(table.markdown(notes), encoding="utf-8"))
    write_aside(tex, lambda path: path.write_text(table.latex(), encoding="utf-8"))
    return [csv, md, tex]


def write_curves(frame: pd.DataFrame, out_dir: str | Path, name: str, title: str,
                 marks: dict | None = None) -> list[Path]:
    """curves/`name`/: the overview and one figure per cell (PNG and SVG); `marks` are the
    report's figures per cell (Table.marks())."""
    if frame.empty:
        return []
    return write_learning_curves(frame, Path(out_dir) / "curves" / name, title, marks)


# --- the plan, before running ----------------------------------------------------------------


def plan_rows(spec: ExperimentSpec, plans: dict[str, list[PlannedRun]], store: ResultsStore,
              seen: set[str] | None = None, times: TimeModel | None = None,
              workers: int = 1, stack: int = 1) -> list[dict]:
    """One row per stage of an experiment: cells, runs, already done, to run, estimated time
    (on `workers` processes, or stacked `stack` at a time in one).

    `seen` holds the ids counted by earlier rows: a run two tables share is counted once, as
    it will be trained once."""
    times = times or TimeModel(store.rows())
    seen = set() if seen is None else seen
    rows = []
    for stage, plan in plans.items():
        pending = [run for run in plan if not store.done(run.run_id)]
        new = list({run.run_id: run for run in pending if run.run_id not in seen}.values())
        seen.update(run.run_id for run in pending)
        rows.append({
            "experiment": spec.name, "stage": stage,
            "cells": len({run.label for run in plan}), "runs": len(plan),
            "done": len(plan) - len(pending), "shared": len(pending) - len(new),
            "to run": len(new), "estimate": format_duration(times.total(new, workers,
                                                                         stack=stack)),
            "seconds": times.total(new, workers, stack=stack),
            "untimed": sorted({run.model for run in new if not times.timed(run.model)}),
        })
    return rows
