"""What one answer costs on each deployment path: Keras, SavedModel signature, TFLite.

    python benchmarks/bench_inference.py [--calls 1000] [--batch 1000]

For siamese_argmax and siamese_fullyconv (each trained with its preset's recipe on 1,000 pairs,
seed 0): single-pair latency (median of --calls calls after a warm-up), batch throughput (median
of 20 batches of --batch pairs), file sizes, and the quantized files' test error on 1,000 test
pairs. Writes benchmarks/results/inference.md with the date, machine and package versions.

The paths, as an app would call them:
- keras: `model(pairs, training=False)`, eager;
- savedmodel: `tf.saved_model.load(dir).signatures["serving_default"](pair=...)`;
- tflite-*: `ai_edge_litert` `Interpreter(...).get_signature_runner("serving_default")(pair=...)`
  with the interpreter's default threads (the runner resizes and allocates on every call, as
  any app that uses it does).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)

HERE = Path(__file__).resolve().parent
MODELS = ("siamese_argmax", "siamese_fullyconv")
RECIPE = {"train.n_train": 1000, "train.n_test": 1000}  # the presets' own optimiser and epochs
TFLITE = ("none", "float16", "dynamic", "int8")
PATHS = ("keras", "savedmodel", *(f"tflite-{q}" for q in TFLITE))
TARGET_US = 40  # the target for float TFLite, per pair, on this 2-core CPU
WARMUP = 100
BATCH_REPS = 20


# --- measuring ------------------------------------------------------------------------------


def median_seconds(call: Callable[[], object], reps: int, warmup: int = WARMUP) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def exported(name: str, root: Path) -> dict:
    """Train `name`, save its run, export every format; the paths and the test pairs."""
    from pairzoo.export import export_model
    from pairzoo.training import save_run, train

    result = train(name, seed=0, overrides=RECIPE)
    run_dir = save_run(result, root / "runs" / name / "bench-seed0")
    files = {"keras": run_dir / "model.keras",
             "savedmodel": export_model(run_dir, "savedmodel", out=root / name / "saved").path}
    for quantize in TFLITE:
        out = root / name / f"{quantize}.tflite"
        files[f"tflite-{quantize}"] = export_model(run_dir, "tflite", quantize, out).path
    return {"files": files, "keras_error": result.metrics["test_error"]}


def runners(files: dict[str, Path]) -> dict[str, Callable]:
    """path name -> a function (N, 2, 14, 14) float32 -> outputs, as an app calls each."""
    import tensorflow as tf

    from pairzoo.runs import load_model

    model = load_model(files["keras"])
    serve = tf.saved_model.load(str(files["savedmodel"])).signatures["serving_default"]
    calls = {"keras": lambda x: model(x, training=False),
             "savedmodel": lambda x: serve(pair=tf.constant(x))}
    for quantize in TFLITE:
        calls[f"tflite-{quantize}"] = tflite_call(files[f"tflite-{quantize}"])
    return calls


def tflite_call(path: Path) -> Callable:
    from ai_edge_litert.interpreter import Interpreter

    run = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    return lambda x: run(pair=x)


def size_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(name: str, root: Path, calls: int, batch: int) -> dict:
    import numpy as np

    from pairzoo.data import load_pairs
    from pairzoo.evaluation import score

    made = exported(name, root)
    _, test = load_pairs(RECIPE["train.n_train"], RECIPE["train.n_test"], seed=0)
    single = test.pairs[:1]
    many = np.resize(test.pairs, (batch, 2, 14, 14))
    rows = {}
    for path, run in runners(made["files"]).items():
        latency = median_seconds(lambda run=run: run(single), calls)
        batch_seconds = median_seconds(lambda run=run: run(many), BATCH_REPS, warmup=3)
        outputs = {k: np.asarray(v) for k, v in run(test.pairs).items()}
        rows[path] = {"latency_us": latency * 1e6, "pairs_per_s": batch / batch_seconds,
                      "size_kB": size_bytes(made["files"][path]) / 1024,
                      "test_error": score(outputs, test)["test_error"]}
        print(f"{name:18s} {path:16s} {latency * 1e6:10.1f} us/pair  "
              f"{batch / batch_seconds:12,.0f} pairs/s  {rows[path]['size_kB']:8.0f} kB  "
              f"error {rows[path]['test_error']:.1f} %", flush=True)
    return rows


# --- the machine and the report -------------------------------------------------------------


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    return {
        "date": subprocess.run(["date"], capture_output=True, text=True).stdout.strip(),
        "cpu": fields.get("Model name", "?").strip(),
        "nproc": os.cpu_count(),
        "flags": "AVX-512" if "avx512f" in fields.get("Flags", "") else "no AVX-512",
        "load": os.getloadavg(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("tensorflow-cpu", "keras", "ai-edge-litert",
                                             "numpy")},
    }


def report(results: dict, info: dict, args, load_after) -> str:
    lines = [
        "# Inference benchmark: Keras, SavedModel, TFLite",
        "",
        f"Measured {info['date']} by `python benchmarks/bench_inference.py --calls {args.calls} "
        f"--batch {args.batch}`.",
        "",
        f"- Machine: {info['cpu']}, {info['nproc']} cores ({info['flags']}), no GPU.",
        f"- Versions: Python {info['python']}, "
        + ", ".join(f"{p} {v}" for p, v in info["versions"].items()) + ".",
        f"- Load average (1/5/15 min) at start {' / '.join(f'{x:.1f}' for x in info['load'])}, "
        f"at end {' / '.join(f'{x:.1f}' for x in load_after)}: the CPU is shared with other "
        "developers, so absolute times are upper bounds; ratios were measured side by side.",
        "- GPU: not available in this session (this task was not lent a GPU machine), so no GPU "
        "figures; skipped.",
        "- Models: each preset's own recipe on 1,000 training pairs, seed 0; errors on 1,000 "
        "test pairs (embedded digits).",
        "",
        "Paths: `keras` = `model(pairs, training=False)` (eager); `savedmodel` = the "
        "`serving_default` signature after `tf.saved_model.load`; `tflite-*` = ai-edge-litert's "
        "signature runner (default threads), float32 in and out for every quantization.",
        f"Latency: median of {args.calls} single-pair calls after {WARMUP} warm-up calls. "
        f"Throughput: median of {BATCH_REPS} batches of {args.batch} pairs. "
        "Ratios: how many times faster than Keras (latency) or how many times Keras's "
        "throughput. Error delta: test error minus Keras's, in percentage points.",
        "",
    ]
    for name, rows in results.items():
        keras_row = rows["keras"]
        lines += [f"## {name}", "",
                  "| path | latency (µs / pair) | × Keras | throughput (pairs / s) | × Keras "
                  "| size (kB) | test error (%) | Δ error (points) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for path, row in rows.items():
            faster = keras_row["latency_us"] / row["latency_us"]
            more = row["pairs_per_s"] / keras_row["pairs_per_s"]
            lines.append(
                f"| {path} | {row['latency_us']:,.1f} | {faster:,.0f} "
                f"| {row['pairs_per_s']:,.0f} | {more:.2f} "
                f"| {row['size_kB']:,.0f} | {row['test_error']:.1f} "
                f"| {row['test_error'] - keras_row['test_error']:+.1f} |")
        float_us = rows["tflite-none"]["latency_us"]
        verdict = "met" if float_us <= TARGET_US else "NOT met"
        lines += ["", f"Target TFLite float ≤ {TARGET_US} µs per pair: {float_us:.1f} µs, "
                  f"{verdict}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="single-pair calls (>= 1000)")
    parser.add_argument("--batch", type=int, default=1000, help="pairs per batch")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "inference.md")
    args = parser.parse_args()
    if args.calls < 1000:
        parser.error("--calls must be at least 1000 (a median of fewer is too noisy here)")
    info = machine()
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        results = {name: measure(name, Path(tmp), args.calls, args.batch) for name in MODELS}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(results, info, args, os.getloadavg()) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
