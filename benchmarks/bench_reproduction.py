"""What regenerating the five reports' tables costs, without regenerating them.

    python benchmarks/bench_reproduction.py [--epochs 3] [--write-costs]
    python benchmarks/bench_reproduction.py --from-stores results/00*/runs.jsonl
    python benchmarks/bench_reproduction.py --check 000      # then one report for real

A full regeneration takes hours on 2 cores, too long to repeat often. This job takes the plans
`pairzoo reproduce` would run for reports 000-004 (plan_table over the shipped specs at the
presets' recipes, from empty stores), finds their distinct architectures and recipes
(plan.cost_key), trains each twice in one process per model family (as a worker would: the
first run traces, the second reuses the trace) for --epochs epochs, each timed, and scales
each run to its recipe's epochs (its fixed part + epochs x the median later epoch). Those
rows, as a store would hold them, go to the same TimeModel that
`pairzoo reproduce --dry-run` uses. The totals per report are then those the dry run prints
from an empty store, on the worker count reproduce would choose (plan.auto_workers).

--write-costs stores the measured costs in pairzoo/experiments/step_costs.json, which the dry
run falls back on for architectures its store has never timed. --from-stores learns from
finished stores instead of training. --check REPORT then regenerates that report into a
temporary store with the real command and compares its wall time with the estimate.
Prints one figure per line; writes them with date, machine and load to
benchmarks/results/reproduction.md (--out).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)
from pairzoo.experiments import plan as plan_module
from pairzoo.experiments.plan import (
    DEFAULT_STACK,
    TimeModel,
    auto_workers,
    format_duration,
    plan_table,
    pool_speedup,
    run_cost_key,
)
from pairzoo.experiments.spec import specs_for_report

HERE = Path(__file__).resolve().parent
REPORTS = ("000", "001", "002", "003", "004")


def report_plans(reports, overrides: dict) -> dict[str, list]:
    """report -> the runs `pairzoo reproduce REPORT` trains from an empty store (a run two of
    its tables share counted once, as the store trains it once)."""
    plans = {}
    for report in reports:
        runs = {}
        for spec in specs_for_report(report):
            for run in plan_table(spec, overrides=overrides):
                runs.setdefault(run.run_id, run)
        plans[report] = list(runs.values())
    return plans


def _timing_run(run, epochs: int | None):
    if epochs is None:
        return run
    preset = dataclasses.replace(run.preset,
                                 train=dataclasses.replace(run.preset.train, epochs=epochs))
    return dataclasses.replace(run, spec=run.spec.replace(preset=preset))


def measure_family(runs: list, epochs: int | None) -> list[dict]:
    """In a fresh process (its TF threads are the family's): each architecture twice, as a
    worker trains it, timing every epoch; returns store-like rows scaled to the recipe's own
    epochs: the run's fixed part (pairs, fresh weights, final evaluation; the trace in the
    first epoch of the first run) + the recipe's epochs x the median later epoch."""
    import statistics

    import keras

    from pairzoo.experiments.runner import train_row

    class EpochClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.marks = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.marks.append(time.perf_counter())

    rows = []
    for run in runs:
        timed = _timing_run(run, epochs)
        for seed in (run.seed, run.seed + 1):
            clock = EpochClock()
            row = train_row(dataclasses.replace(timed, spec=timed.spec.replace(seed=seed)),
                            callbacks=[clock])
            durations = [b - a for a, b in zip(clock.marks, clock.marks[1:], strict=False)]
            epoch = statistics.median(durations[1:] or durations)
            fixed = row["seconds"] - sum(durations) + durations[0] - epoch
            seconds = fixed + run.preset.train.epochs * epoch
            rows.append({**{k: row[k] for k in ("model", "config", "recipe", "host", "pid")},
                         "steps": run.steps, "seconds": seconds})
    return rows


def measure(plans: dict[str, list], epochs: int | None, figure) -> TimeModel:
    representatives: dict[str, object] = {}
    for runs in plans.values():
        for run in runs:
            representatives.setdefault(run_cost_key(run), run)
    families: dict[str, list] = {}
    for run in representatives.values():
        families.setdefault(run.preset.model.family, []).append(run)
    figure(f"timing {len(representatives)} distinct architectures and recipes, twice each "
           f"({'the recipes epochs' if epochs is None else f'{epochs} epochs'}), one process "
           f"per model family ({', '.join(families)})")
    times = TimeModel(prior={})
    context = multiprocessing.get_context("spawn")
    for family, runs in families.items():
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            start = time.perf_counter()
            for row in pool.submit(measure_family, runs, epochs).result():
                times.add(row)
            figure(f"{family}: {len(runs)} architectures timed in "
                   f"{time.perf_counter() - start:.0f} s")
    return times


def from_stores(paths: list[Path], figure) -> TimeModel:
    times = TimeModel(prior={})
    for path in paths:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for row in rows:
            times.add(row)
        figure(f"learned from {path}: {len(rows)} rows")
    return times


def estimate(plans: dict[str, list], times: TimeModel, cores: int, figure) -> dict[str, float]:
    totals = {}
    for report, runs in plans.items():
        serial = times.total(runs, 1, cores)
        keys = {run_cost_key(run) for run in runs}
        workers = auto_workers(len(runs), serial, cores)  # as reproduce chooses
        if workers == 1:
            totals[report] = wall = times.total(runs, 1, cores, stack=DEFAULT_STACK)
            how = f"runs of a cell stacked up to {DEFAULT_STACK} at a time in one process"
        else:
            totals[report] = wall = times.total(runs, workers, cores)
            how = f"{workers} worker processes ({pool_speedup(workers, cores):.2f}x)"
        figure(f"report {report}: {len(runs)} runs, {len(keys)} architectures and recipes; "
               f"{format_duration(serial)} in one process, one run at a time; reproduce "
               f"would train {how}: about {format_duration(wall)} ({wall / 60:.1f} min)")
    total = sum(totals.values())
    figure(f"reports {', '.join(totals)} in all: about {format_duration(total)} "
           f"({total / 60:.0f} min; issue 26's target for all five <= 2.5 h on 2 cores)")
    for report, runs in plans.items():
        by_model: dict[str, float] = {}
        for run in runs:
            by_model[run.model] = by_model.get(run.model, 0.0) + times.seconds(run, traced=True)
        top = sorted(by_model.items(), key=lambda item: -item[1])[:3]
        figure(f"report {report} largest shares (one process, traces aside): "
               + ", ".join(f"{m} {100 * s / sum(by_model.values()):.0f} %" for m, s in top))
    return totals


def check(report: str, overrides: dict, estimated: float, figure) -> None:
    """The real command on an empty store: its wall time against the estimate."""
    with tempfile.TemporaryDirectory(prefix="pairzoo-reproduce-") as tmp:
        command = [sys.executable, "-m", "pairzoo", "reproduce", report, "--no-plots",
                   "--store", f"{tmp}/runs.jsonl", "--out", tmp,
                   *[f"--set={k}={v}" for k, v in overrides.items()]]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - start
    figure(f"check: `pairzoo reproduce {report}` from an empty store took {wall / 60:.1f} min "
           f"against {estimated / 60:.1f} min estimated ({wall / estimated:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", nargs="+", default=list(REPORTS))
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs per timed run, >= 2 (0: each recipe's own)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every run (e.g. a tiny recipe to try the job)")
    parser.add_argument("--from-stores", nargs="+", type=Path, metavar="STORE",
                        help="learn the costs from finished stores instead of training")
    parser.add_argument("--write-costs", action="store_true",
                        help=f"write the measured costs to {plan_module.STEP_COSTS.name}")
    parser.add_argument("--check", metavar="REPORT",
                        help="then regenerate this report for real and compare")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "reproduction.md")
    args = parser.parse_args()
    if args.epochs == 1:
        parser.error("--epochs 1 leaves no epoch after the traced one to time; use 2 or more")
    from pairzoo.config import parse_override

    overrides = dict(parse_override(item) for item in args.set)

    lines: list[str] = []

    def figure(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    cores = os.cpu_count() or 1
    figure(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    figure(f"machine {platform.machine()}, {cores} cores")
    figure(f"load average at start {os.getloadavg()[0]:.2f}")
    if overrides:
        figure(f"overrides {overrides} (not the reports' recipes: a check that the job runs)")
    plans = report_plans(args.reports, overrides)
    if args.from_stores:
        times = from_stores(args.from_stores, figure)
    else:
        times = measure(plans, args.epochs or None, figure)
    totals = estimate(plans, times, cores, figure)
    if args.check:
        report = next(r for r in plans if r in args.check or args.check in r)
        check(args.check, overrides, totals[report], figure)
    figure(f"load average at end {os.getloadavg()[0]:.2f}")
    if args.write_costs:
        plan_module.STEP_COSTS.write_text(json.dumps({
            "measured": (f"learned {datetime.now(UTC):%Y-%m-%d} by benchmarks/"
                         f"bench_reproduction.py from the runs in "
                         f"{', '.join(map(str, args.from_stores))} (their own dates and loads)"
                         if args.from_stores else
                         f"{datetime.now(UTC):%Y-%m-%d} on {platform.machine()}, {cores} cores, "
                         f"load {os.getloadavg()[0]:.2f}, by benchmarks/bench_reproduction.py "
                         f"--epochs {args.epochs}"),
            "costs": {key: {k: float(f"{v:.4g}") if isinstance(v, float) else v
                            for k, v in cost.items()}
                      for key, cost in times.costs().items()}}, indent=1, sort_keys=True) + "\n")
        figure(f"wrote {plan_module.STEP_COSTS}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Reproduction cost (benchmarks/bench_reproduction.py)\n\n"
                        + "\n".join(f"- {line}" for line in lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
