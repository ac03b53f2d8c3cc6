"""What an experiment leaves behind: its table (CSV for machines, Markdown for people, a rich
table on the terminal), its learning curves, and, before anything runs, its plan and cost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pairzoo.experiments.plan import PlannedRun, TimeModel, format_duration
from pairzoo.experiments.plots import write_learning_curves
from pairzoo.experiments.spec import ExperimentSpec
from pairzoo.experiments.store import ResultsStore
from pairzoo.experiments.tables import (
    display_frame,
    markdown,
    outside_rows,
    plan_summary,
    rich_table,
    summarise,
)


@dataclass
class Table:
    title: str
    summary: pd.DataFrame  # numbers: axes, runs, <metric> mean/std/count[, report, z, outside]
    shown: pd.DataFrame  # the same as strings
    outside: pd.Series  # rows outside the report's mean +- 2 std
    metrics: list[str]
    name: str = ""  # file stem for its CSV, Markdown and curves
    frame: pd.DataFrame | None = None  # the runs behind it

    def rich(self):
        return rich_table(self.shown, self.title, self.outside)

    def markdown(self, notes: str = "") -> str:
        lines = [f"## {self.title}", "", markdown(self.shown), ""]
        flagged = self.summary[self.outside]
        if len(flagged):
            lines.append("Cells outside the report's mean ± 2 std: "
                         + "; ".join(flagged["cell"]) + ".")
            lines.append("")
        cell_notes = [f"- {c}: {n}" for c, n in zip(self.summary["cell"],
                                                    self.summary.get("note", []), strict=False)
                      if n]
        if cell_notes:
            lines += ["Notes:", *cell_notes, ""]
        if notes:
            lines += [notes.strip(), ""]
        return "\n".join(lines)


def spec_table(spec: ExperimentSpec, plan: list[PlannedRun], store: ResultsStore,
               frame: pd.DataFrame | None = None) -> Table:
    """The experiment's table: every planned cell, ours beside the report's figures."""
    if frame is None:
        from pairzoo.experiments.runner import plan_frame

        frame = plan_frame(plan, store)
    summary = plan_summary(spec, plan, frame)
    title = f"{spec.name}: {spec.title}" if spec.title else spec.name
    shown = display_frame(summary, spec.metrics, spec.axis_names)
    return Table(title, summary, shown, outside_rows(summary, spec.metrics), spec.metrics,
                 spec.name, frame)


def store_tables(frame: pd.DataFrame, metrics: list[str]) -> list[Table]:
    """One table per (experiment, stage) in a store, cells as the rows recorded them."""
    tables = []
    for (experiment, stage), part in frame.groupby(["experiment", "stage"], sort=False):
        present = [m for m in metrics if m in part and part[m].notna().any()]
        summary = summarise(part, present)
        axes = list(dict.fromkeys(k for cell in part["cell"] for k in cell))
        shown = display_frame(summary, present, axes)
        title = experiment if stage == "table" else f"{experiment} ({stage})"
        name = experiment if stage == "table" else f"{experiment}_{stage}"
        tables.append(Table(title, summary, shown, pd.Series(False, index=summary.index),
                            present, name, part))
    return tables


def write_table(table: Table, out_dir: str | Path, name: str, notes: str = "") -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    table.summary.to_csv(csv, index=False)
    md.write_text(table.markdown(notes), encoding="utf-8")
    return [csv, md]


def write_curves(frame: pd.DataFrame, out_dir: str | Path, name: str, title: str) -> list[Path]:
    if frame.empty:
        return []
    return write_learning_curves(frame, Path(out_dir) / "curves" / name, title)


# --- the plan, before running ----------------------------------------------------------------


def plan_rows(spec: ExperimentSpec, plans: dict[str, list[PlannedRun]], store: ResultsStore,
              seen: set[str] | None = None, times: TimeModel | None = None,
              workers: int = 1) -> list[dict]:
    """One row per stage of an experiment: cells, runs, already done, to run, estimated time
    (on `workers` processes).

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
            "to run": len(new), "estimate": format_duration(times.total(new, workers)),
            "seconds": times.total(new, workers),
            "untimed": sorted({run.model for run in new if not times.timed(run.model)}),
        })
    return rows
