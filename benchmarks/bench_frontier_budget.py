"""The frontier entry's budgets beside siamese_vgg_aug's, measured side by side in one run.

    python benchmarks/bench_frontier_budget.py [--calls 2000]

For each entry's release weights: trainable parameters, float TFLite file size, and single-pair
latency through LiteRT with one thread (the interpreter an app on a device runs), the two
entries' calls interleaved in rounds so that a change in the machine's load hits both alike;
the median over all calls. Prints one figure per line and writes
benchmarks/results/frontier_budget.md with the date, machine and load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_inference import machine

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)

HERE = Path(__file__).resolve().parent
ENTRIES = ("siamese_vgg_aug", "siamese_vgg_distilled")
ROUNDS = 20


def tflite_runner(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    run = Interpreter(model_path=str(path), num_threads=1).get_signature_runner(
        "serving_default")
    return lambda x: run(pair=x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per entry (all rounds)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "frontier_budget.md")
    args = parser.parse_args()

    from pairzoo.data import load_pairs
    from pairzoo.export import export_model
    from pairzoo.models import count_trainable_params
    from pairzoo.zoo import load_release_model

    info = machine()
    print(f"load average at start {info['load'][0]:.2f} ({info['nproc']} cores)")
    pair = load_pairs(10, 10, seed=0)[1].pairs[:1]
    rows, runners = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ENTRIES:
            path = export_model(name, "tflite", "none", Path(tmp) / f"{name}.tflite").path
            runners[name] = tflite_runner(path)
            rows[name] = {"params": count_trainable_params(load_release_model(name)),
                          "kB": path.stat().st_size / 1024, "times": []}
        for run in runners.values():  # warm-up
            for _ in range(100):
                run(pair)
        per_round = max(1, args.calls // ROUNDS)
        for _ in range(ROUNDS):
            for name, run in runners.items():
                for _ in range(per_round):
                    start = time.perf_counter()
                    run(pair)
                    rows[name]["times"].append(time.perf_counter() - start)
    for name, row in rows.items():
        row["us"] = statistics.median(row["times"]) * 1e6
        print(f"{name} trainable parameters {row['params']:,}")
        print(f"{name} float TFLite {row['kB']:.0f} kB")
        print(f"{name} float TFLite, 1 thread, one pair: {row['us']:.1f} us (median)")
    base, new = (rows[name]["us"] for name in ENTRIES)
    print(f"latency ratio {ENTRIES[1]} / {ENTRIES[0]}: {new / base:.3f}")
    end_load = os.getloadavg()[0]
    print(f"load average at end {end_load:.2f}")
    lines = [
        "# The frontier entry's budgets (issue 22)", "",
        f"{info['date']}; {info['cpu']} ({info['nproc']} cores, {info['flags']}); load "
        f"average {info['load'][0]:.2f} at start, {end_load:.2f} at end; "
        f"{', '.join(f'{k} {v}' for k, v in info['versions'].items())}. "
        "Both entries' release weights, exported to float TFLite, called through LiteRT with "
        f"one thread, in {ROUNDS} interleaved rounds ({per_round} calls each per entry); the "
        "median of all calls. `python benchmarks/bench_frontier_budget.py`.", "",
        "| entry | trainable parameters | float TFLite | one pair, 1 thread |",
        "|---|---|---|---|",
        *(f"| {name} | {row['params']:,} | {row['kB']:.0f} kB | {row['us']:.1f} µs |"
          for name, row in rows.items()),
        "", f"Latency ratio {ENTRIES[1]} / {ENTRIES[0]}: **{new / base:.3f}** (budget: ≤ 1, "
        "and ≤ 1M parameters).", ""]
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
