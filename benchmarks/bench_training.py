"""What a run and an experiment cost: pairzoo's fast path vs `model.fit` vs PyTorch eager.

    pip install -e ".[cpu,bench]" && python benchmarks/bench_training.py [--reps 3]

Prints one figure per line and writes benchmarks/results/training.md (date, machine, versions).
Every measurement runs in a fresh process (TF's thread pools are fixed per process), and the
engines alternate within each repetition, so speed is always a ratio measured side by side.
Recipe of the issue: 25 epochs, 1,000 pairs, batch 100, Adam 1e-3, seed per repetition.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("siamese_argmax", "siamese_fullyconv")
RECIPE = {"train.optimizer": "adam", "train.learning_rate": 1e-3, "train.epochs": 25,
          "train.batch_size": 100, "train.n_train": 1000, "train.n_test": 1000}
NO_BATCHNORM = {"model.tower.batchnorm": [False], "model.tower.dense_batchnorm": False,
                "model.tower.output_batchnorm": False, "model.head_batchnorm": False}
# 2 cores x 2.6 GHz x 32 FP32 FLOP/cycle (one 512-bit FMA per cycle), as measured in
# ../shared/FACTS.md; the CPU does not report its clock inside this VM.
PEAK_FLOPS = 166e9


# --- workers (run in their own processes) --------------------------------------------------


def worker(mode: str, model: str, seeds: list[int]) -> dict:
    import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)

    if mode == "torch":
        sys.path.insert(0, str(HERE))
        import torch_reference

        from pairzoo.data import load_pairs

        times = []
        for seed in seeds:
            pairs, test = load_pairs(1000, 1000, seed)
            times.append(torch_reference.train_once(model, pairs.pairs, pairs.digits, seed,
                                                    test_pairs=test.pairs,
                                                    test_digits=test.digits))
        return {"seconds": times}
    if mode == "bf16":
        import keras

        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    from pairzoo.training import train

    engine = "fit" if mode == "fit" else "fast"
    recipe = {**RECIPE, **(NO_BATCHNORM if mode == "nobn" else {})}
    runs = [train(model, seed=s, overrides=recipe, engine=engine).metrics for s in seeds]
    return {"seconds": [m["train_seconds"] for m in runs],
            "test_error": [m["test_error"] for m in runs]}


def spawn(mode: str, model: str, seeds: list[int], env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker", mode, model, *map(str, seeds)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def run(mode: str, model: str, seeds: list[int], env: dict | None = None) -> dict:
    start = time.perf_counter()
    process = spawn(mode, model, seeds, env)
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"worker {mode} {model} failed")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - start
    return result


# --- FLOPs ------------------------------------------------------------------------------------


def forward_flops(model) -> int:
    """Multiply-adds x 2 of one pair's forward pass, from the layers' shapes."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a tower: counted once per call
            calls = len(layer._inbound_nodes)
            total += calls * forward_flops(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, out_channels = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * kh * kw * layer.input.shape[-1] * out_channels * height * width
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def run_flops(model_name: str) -> tuple[int, int]:
    """(forward FLOPs per pair, FLOPs per run): training ~ 3x forward (backward is ~2x), plus
    the per-epoch forward pass over the test pairs."""
    from pairzoo.registry import create_model

    forward = forward_flops(create_model(model_name, **RECIPE))
    epochs, n_train, n_test = RECIPE["train.epochs"], RECIPE["train.n_train"], 1000
    return forward, epochs * (3 * forward * n_train + forward * n_test)


# --- the benchmark ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--worker", nargs="+")
    args = parser.parse_args()
    if args.worker:
        mode, model, *seeds = args.worker
        print(json.dumps(worker(mode, model, [int(s) for s in seeds])))
        return

    lines: list[str] = []

    def figure(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    figure(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    figure(f"machine {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
           f"{_cpu_model()}")
    figure(f"versions {_versions()}")
    figure(f"load average at start {os.getloadavg()[0]:.2f} (other work on the machine)")

    solo: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.reps):
        for model in MODELS:
            for mode in ("fast", "fit", "torch"):  # alternating, one process each
                seconds = run(mode, model, [rep])["seconds"][0]
                solo.setdefault((model, mode), []).append(seconds)
    for model in MODELS:
        med = {mode: statistics.median(solo[(model, mode)]) for mode in ("fast", "fit", "torch")}
        figure(f"{model} solo run seconds (median of {args.reps}): fast {med['fast']:.2f}, "
               f"fit {med['fit']:.2f}, torch eager {med['torch']:.2f}")
        figure(f"{model} solo run ratio fast/torch {med['fast'] / med['torch']:.2f} "
               f"(target <= 0.6), fit/torch {med['fit'] / med['torch']:.2f}")

        experiment = run("fast", model, list(range(10)))
        per_run = statistics.median(experiment["seconds"][1:])  # runs that reuse the trace
        figure(f"{model} per run inside an experiment {per_run:.2f} s, ratio to torch eager "
               f"{per_run / med['torch']:.2f} (target <= 0.5)")
        forward, flops = run_flops(model)
        figure(f"{model} FLOPs: {forward / 1e6:.2f} MFLOP forward per pair, "
               f"{flops / 1e9:.1f} GFLOP per run")
        achieved = flops / per_run
        figure(f"{model} achieved {achieved / 1e9:.1f} GFLOP/s = {100 * achieved / PEAK_FLOPS:.0f} "
               f"% of the {PEAK_FLOPS / 1e9:.0f} GFLOP/s FP32 peak (target >= 50 %)")

    model = "siamese_fullyconv"
    start = time.perf_counter()
    for seed in range(10):
        subprocess.run([sys.executable, "-m", "pairzoo", "train", model, "--seed", str(seed),
                        *sum((["--set", f"{k}={v}"] for k, v in RECIPE.items()), []),
                        "--out", f"/tmp/pairzoo-bench/{time.time_ns()}"],
                       check=True, capture_output=True)
    separate = time.perf_counter() - start
    one = run("fast", model, list(range(10)))["wall"]
    start = time.perf_counter()
    halves = [spawn("fast", model, list(range(k, 10, 2)), {"PAIRZOO_TF_THREADS": "1,1"})
              for k in (0, 1)]
    for process in halves:
        process.communicate()
    two = time.perf_counter() - start
    figure(f"{model} ten seeds wall: ten processes {separate:.1f} s, one process {one:.1f} s, "
           f"two workers {two:.1f} s ({separate / two:.1f}x faster than ten processes)")

    for family_model in ("siamese_fullyconv", "two_channel_baseline"):
        timings = []
        for threads in ("1,2", "2,1", "2,2", "1,1"):
            result = run("fast", family_model, [0, 1], {"PAIRZOO_TF_THREADS": threads})
            timings.append(f"{threads} {result['seconds'][1]:.2f} s")
        figure(f"{family_model} threads intra,inter (second run): " + ", ".join(timings))

    fp32 = run("fast", model, [0, 1, 2])
    plain = run("fast", model, [0, 1, 2], {"TF_ENABLE_ONEDNN_OPTS": "0"})
    on_s, off_s = (statistics.median(r["seconds"][1:]) for r in (fp32, plain))
    figure(f"{model} oneDNN kernels on (pairzoo's default) {on_s:.2f} s vs off {off_s:.2f} s "
           f"per run (reused trace): {off_s / on_s:.2f}x")
    # what batch norm costs: the same model with its ten batch-norm layers off
    no_bn = run("nobn", model, [0, 1, 2])
    no_bn_s = statistics.median(no_bn["seconds"][1:])
    figure(f"{model} without its batch-norm layers {no_bn_s:.2f} s vs {on_s:.2f} s per run: "
           f"batch norm is {100 * (1 - no_bn_s / on_s):.0f} % of the time")
    bf16 = run("bf16", model, [0, 1, 2])
    bf16_s, fp32_s = (statistics.median(r["seconds"][1:]) for r in (bf16, fp32))
    bf16_e, fp32_e = (statistics.mean(r["test_error"]) for r in (bf16, fp32))
    figure(f"{model} bfloat16 mixed precision: {bf16_s:.2f} s vs float32 {fp32_s:.2f} s per run "
           f"(reused trace); test error {bf16_e:.2f} % vs {fp32_e:.2f} % (seeds 0-2)")

    figure(f"load average at end {os.getloadavg()[0]:.2f}")
    out = HERE / "results" / "training.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("# Training speed (benchmarks/bench_training.py)\n\n" +
                   "\n".join(f"- {line}" for line in lines) + "\n")
    print(f"wrote {out}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _versions() -> str:
    from pairzoo.training import package_versions

    return ", ".join(f"{k} {v}" for k, v in package_versions().items())


if __name__ == "__main__":
    main()
