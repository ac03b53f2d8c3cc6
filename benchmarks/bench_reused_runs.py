"""A run inside an experiment (the process's later runs, reusing the traced epoch): this
checkout against an earlier commit, side by side.

    python benchmarks/bench_reused_runs.py [--baseline 4a17aa9~1] [--reps 2] [--runs 6]

For each model, one fresh process per side and repetition, alternating baseline and current,
trains `--runs` seeds one after another with issue 16's recipe (Adam 1e-3, batch 100, 25
epochs, 1,000 train and 1,000 test pairs) through the fast loop; the figure is the median of
the later runs (the first traces). The test errors of both sides must be equal, run by run:
a speed-up that changes results is not one. The baseline runs from a temporary git worktree
(bench_startup's). Prints one figure per line and writes them, with date, machine and load,
to benchmarks/results/reused-runs.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_startup import ROOT, baseline_checkout
from bench_training import RECIPE
from figures import Figures

# one process: pairzoo from the folder given (the baseline's or this checkout's), N runs
RUNS = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import pairzoo
assert pairzoo.__file__.startswith(sys.argv[1]), pairzoo.__file__
from pairzoo.training import train
seconds, errors = [], []
for seed in range(int(sys.argv[3])):
    start = time.perf_counter()
    result = train(sys.argv[2], seed=seed, overrides=json.loads(sys.argv[4]), loop="fast")
    seconds.append(time.perf_counter() - start)
    errors.append(result.metrics["test_error"])
print(json.dumps({"seconds": seconds, "errors": errors}))
"""


def one_process(tree: str, model: str, runs: int, cache: str) -> dict:
    done = subprocess.run([sys.executable, "-c", RUNS, tree, model, str(runs),
                           json.dumps(RECIPE)], capture_output=True, text=True, check=True,
                          env={**os.environ, "PAIRZOO_CACHE": cache})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="4a17aa9~1")
    parser.add_argument("--models", nargs="+", default=["siamese_argmax", "siamese_fullyconv"])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()
    figures = Figures()
    figures.header()
    figures(f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="pairzoo-reused-") as tmp:
        old = baseline_checkout(args.baseline, Path(tmp) / "baseline")
        try:
            for model in args.models:
                later = {"baseline": [], "now": []}
                errors = {"baseline": [], "now": []}
                for _ in range(args.reps):
                    for side, tree in (("baseline", old), ("now", str(ROOT))):
                        got = one_process(tree, model, args.runs, str(Path(tmp) / "cache"))
                        later[side] += got["seconds"][1:]
                        errors[side].append(got["errors"])
                if errors["baseline"] != errors["now"]:
                    raise SystemExit(f"{model}: the test errors differ: {errors}")
                before, now = (statistics.median(later[k]) for k in ("baseline", "now"))
                figures(f"{model} per run inside an experiment: {before:.2f} s at "
                        f"{args.baseline}, {now:.2f} s now ({now / before:.2f}x; median of "
                        f"{len(later['now'])} runs, the same test errors run by run)")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", old],
                           capture_output=True)
    figures(f"load average at end {os.getloadavg()[0]:.2f}")
    figures.write(ROOT / "benchmarks" / "results" / "reused-runs.md",
                  "A run inside an experiment (benchmarks/bench_reused_runs.py)",
                  "Both sides side by side in one run of the script: fresh processes, baseline "
                  "and current\nalternating within each repetition; the recipe of issue 16. "
                  "`uptime`'s 1-minute load is\ngiven at the start (quiet below ~1.5 on 2 "
                  "cores) and at the end, where it is the\nbenchmark's own (one training "
                  "process at a time, three TensorFlow threads).")


if __name__ == "__main__":
    main()
