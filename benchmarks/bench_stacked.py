"""K runs of one preset in one traced step (pairzoo.stacked) against K runs one after another,
and issue 26's targets against the plain PyTorch loop, side by side in one script.

    pip install -e ".[cpu,bench]" && python benchmarks/bench_stacked.py
    python benchmarks/bench_stacked.py --quick     # seconds: checks that everything runs

For siamese_argmax and siamese_fullyconv (issue 16's recipe: Adam 1e-3, batch 100, 25 epochs,
1,000 train and 1,000 test pairs, the test pairs evaluated every epoch as pairzoo does):
- the plain PyTorch 2.13 eager loop a user writes (train, evaluate once; torch_reference.py),
  one fresh process per run, median;
- `train` alone: one fresh process per run, its train_seconds (the trace included), median;
- a stack of K = 1, 2, 5, 10 runs in one process: seconds per run of a second stack (the trace
  aside: the steady figure of a long experiment), K = 1 being K single runs one after another;
- the whole `pairzoo experiment --runs 10` command's wall time / 10 (TensorFlow's import, the
  trace, the store and the tables included), in one process stacked 5 at a time (--workers 1)
  and as two worker processes (--stack 1 --workers 2, what the default picks for such a plan).
Every figure runs in its own process, the engines alternating; one figure per line, written with
date, machine and load to benchmarks/results/stacked-figures.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_training import RECIPE, _load_line, _versions, run  # noqa: E402
from figures import Figures  # noqa: E402

MODELS = ("siamese_argmax", "siamese_fullyconv")
SIZES = (1, 2, 5, 10)
QUICK = {"train.epochs": 2, "train.n_train": 200, "train.n_test": 200}
TARGETS = {"solo": 1.0, "steady": 0.6, "command": 0.8}  # issue 26, ratios to plain PyTorch


def stack_worker(model: str, size: int, recipe: dict) -> dict:
    """Two stacks of `size` runs (seeds 0.. and size..): seconds per run of each."""
    from pairzoo.config import apply_overrides
    from pairzoo.registry import get_preset
    from pairzoo.runs import RunSpec
    from pairzoo.stacked import train_together

    preset = apply_overrides(get_preset(model), recipe)
    per_run = []
    for first in (0, size):
        specs = [RunSpec(preset, seed) for seed in range(first, first + size)]
        results = train_together(specs)
        per_run.append(statistics.mean(r.metrics["train_seconds"] for r in results))
    return {"first": per_run[0], "steady": per_run[1]}


def stack(model: str, size: int, recipe: dict) -> dict:
    command = [sys.executable, __file__, "--worker", model, str(size), json.dumps(recipe)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def experiment_command(model: str, runs: int, recipe: dict, extra: list[str]) -> float:
    """Wall seconds of the whole `pairzoo experiment` command, into a fresh store."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pairzoo", "experiment", "--model", model,
                   "--runs", str(runs), "--store", f"{folder}/runs.jsonl", "--out", folder,
                   "--no-plots", *(f"--set={key}={value}" for key, value in recipe.items()),
                   *extra]
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, text=True, check=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3, help="fresh processes per solo figure")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--quick", action="store_true",
                        help="tiny recipe, one repetition: checks that the script runs")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "stacked-figures.md")
    parser.add_argument("--worker", nargs=3)
    args = parser.parse_args()
    if args.worker:
        model, size, recipe = args.worker
        print(json.dumps(stack_worker(model, int(size), json.loads(recipe))))
        return
    recipe = {**RECIPE, **(QUICK if args.quick else {})}
    reps, command_runs = (1, 4) if args.quick else (args.reps, 10)
    figure = Figures()
    cores = os.cpu_count() or 1
    figure.header()
    figure(f"versions {_versions()}")
    settings = ", ".join(f"{key.split('.')[1]} {value}" for key, value in recipe.items())
    figure(f"recipe {settings}" + (" (--quick: not a measurement)" if args.quick else ""))
    figure(_load_line("at start", cores))
    for model in args.models:
        solo: dict[str, list[float]] = {"torch_plain": [], "pairzoo": []}
        for rep in range(reps):  # alternating, one fresh process each
            for mode in solo:
                solo[mode].append(run(mode, model, [rep], recipe)["seconds"][0])
        torch_s = statistics.median(solo["torch_plain"])
        train_s = statistics.median(solo["pairzoo"])
        figure(f"{model} plain PyTorch loop {torch_s:.2f} s per run (median of {reps} "
               "fresh processes)")
        figure(f"{model} pairzoo train alone {train_s:.2f} s (train_seconds, trace included, "
               f"median of {reps}): {train_s / torch_s:.2f}x PyTorch (target <= "
               f"{TARGETS['solo']})")
        steady = {}
        for size in SIZES:
            result = stack(model, size, recipe)
            steady[size] = result["steady"]
            figure(f"{model} stack of {size}: {result['steady']:.2f} s per run steady "
                   f"({result['steady'] / torch_s:.2f}x PyTorch), {result['first']:.2f} s in "
                   "the first stack (its trace shared)")
        best = min(steady, key=steady.get)
        figure(f"{model} stacked vs runs one after another (steady): "
               + ", ".join(f"K={k} {steady[1] / steady[k]:.2f}x faster" for k in SIZES[1:])
               + f"; best K={best}, {steady[best] / torch_s:.2f}x PyTorch (target <= "
               f"{TARGETS['steady']})")
        for label, extra in (("one process, stacked 5 at a time", ["--workers", "1"]),
                             ("two worker processes", ["--stack", "1", "--workers", "2"])):
            wall = experiment_command(model, command_runs, recipe, extra)
            figure(f"{model} pairzoo experiment --runs {command_runs}, {label}: {wall:.1f} s, "
                   f"{wall / command_runs:.2f} s per run = {wall / command_runs / torch_s:.2f}x "
                   f"PyTorch (target <= {TARGETS['command']})")
        figure(_load_line(f"after {model}", cores))
    figure.write(args.out, "Stacked runs (benchmarks/bench_stacked.py)",
                 "The discussion is in stacked.md; these are the script's own lines.")


if __name__ == "__main__":
    main()
