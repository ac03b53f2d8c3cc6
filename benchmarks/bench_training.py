"""What a run and an experiment cost: pairzoo's fast path against two PyTorch eager loops.

    pip install -e ".[cpu,bench]" && python benchmarks/bench_training.py [--reps 3]
    python benchmarks/bench_training.py --quick     # seconds: checks that everything runs

Two references, both PyTorch 2.13 eager on the same pairs, layers and recipe
(benchmarks/torch_reference.py):
- plain: the loop a user writes: train, then evaluate the test pairs once;
- like-for-like: pairzoo's per-epoch work too: running accuracies, and the test pairs
  evaluated after every epoch (what a learning curve needs, and what pairzoo does).
For siamese_argmax, siamese_fullyconv and siamese_resnet: a solo run (one fresh process, its
trace included) and a run inside an experiment (the same process's later runs, which reuse the
trace), each as a ratio to both references; and the achieved FLOP/s as % of the CPU's peak.

Every measurement runs in a fresh process (TF's thread pools are fixed per process), and the
engines alternate within each repetition, so every ratio is taken side by side. Prints one
figure per line and writes them, with date, machine and load, to
benchmarks/results/training-figures.md (the discussion lives in training.md). A ratio taken
on a busy machine flatters pairzoo (PyTorch's OpenMP threads suffer more): the figures say
when the load was high.
Recipe of issue 16: Adam 1e-3, batch 100, 25 epochs, 1,000 train and 1,000 test pairs.
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

from figures import cpu_model

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)

HERE = Path(__file__).resolve().parent
MODELS = ("siamese_argmax", "siamese_fullyconv", "siamese_resnet")
RECIPE = {"train.optimizer": "adam", "train.learning_rate": 1e-3, "train.epochs": 25,
          "train.batch_size": 100, "train.n_train": 1000, "train.n_test": 1000}
QUICK = {"train.epochs": 2, "train.n_train": 200, "train.n_test": 200}
# pairzoo's variants: name -> overrides. pairzoo's default evaluates the test pairs every epoch
# (the like-for-like loop's peer); without the learning curve it is the plain loop's peer.
PAIRZOO = {"pairzoo": {}, "pairzoo_no_curve": {"train.eval_each_epoch": False}}
PEER = {"pairzoo": "torch_like", "pairzoo_no_curve": "torch_plain"}
REFERENCES = ("torch_plain", "torch_like")
NO_BATCHNORM = {"model.tower.batchnorm": [False], "model.tower.dense_batchnorm": False,
                "model.tower.output_batchnorm": False, "model.head_batchnorm": False}
# 2 cores x 2.6 GHz x 32 FP32 FLOP/cycle (two 256-bit FMA pipes per core), as measured in
# ../shared/FACTS.md; the CPU does not report its clock inside this VM.
PEAK_FLOPS_PER_CORE = 83e9
BUSY_LOAD_PER_CORE = 0.75  # ../shared/FACTS.md: below ~1.5 on 2 cores counts as quiet


# --- workers (run in their own processes) --------------------------------------------------


def worker(mode: str, model: str, seeds: list[int], recipe: dict) -> dict:
    if mode in REFERENCES:
        sys.path.insert(0, str(HERE))
        import torch_reference

        from pairzoo.data import load_pairs

        times, cpu = [], []
        for seed in seeds:
            pairs, test = load_pairs(recipe["train.n_train"], recipe["train.n_test"], seed)
            start = time.process_time()
            times.append(torch_reference.train_once(
                model, pairs.pairs, pairs.digits, seed, epochs=recipe["train.epochs"],
                batch_size=recipe["train.batch_size"], lr=recipe["train.learning_rate"],
                test_pairs=test.pairs, test_digits=test.digits,
                every_epoch=mode == "torch_like"))
            cpu.append(time.process_time() - start)
        return {"seconds": times, "cpu": cpu}
    import keras

    from pairzoo.training import train

    if mode == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    class CpuClock(keras.callbacks.Callback):  # the CPU time of what train_seconds spans
        def on_train_begin(self, logs=None):
            self.start = time.process_time()

        def on_train_end(self, logs=None):
            self.seconds = time.process_time() - self.start

    loop = "fit" if mode == "fit" else "fast"
    overrides = {**recipe, **PAIRZOO.get(mode, {}), **(NO_BATCHNORM if mode == "nobn" else {})}
    runs, cpu = [], []
    for seed in seeds:
        clock = CpuClock()
        runs.append(train(model, seed=seed, overrides=overrides, loop=loop,
                          callbacks=[clock]).metrics)
        cpu.append(clock.seconds)
    return {"seconds": [m["train_seconds"] for m in runs], "cpu": cpu,
            "test_error": [m["test_error"] for m in runs]}


def spawn(mode: str, model: str, seeds: list[int], recipe: dict,
          env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker", mode, model, json.dumps(recipe),
               *map(str, seeds)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def run(mode: str, model: str, seeds: list[int], recipe: dict, env: dict | None = None) -> dict:
    start = time.perf_counter()
    process = spawn(mode, model, seeds, recipe, env)
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"worker {mode} {model} failed")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - start
    return result


# --- FLOPs ------------------------------------------------------------------------------------


def forward_flops(model) -> int:
    """Multiply-adds x 2 of one pair's forward pass, from the convolutions' and dense layers'
    shapes (batch norm, pooling and activations are left out: a few % at most)."""
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


def run_flops(model_name: str, recipe: dict) -> dict[str, float]:
    """Forward FLOPs per pair, and FLOPs per run: training ~ 3x forward (backward is ~2x);
    pairzoo and the like-for-like loop evaluate the test pairs every epoch, the plain loop
    once."""
    from pairzoo.registry import create_model

    forward = forward_flops(create_model(model_name))
    epochs, n_train, n_test = (recipe[k] for k in ("train.epochs", "train.n_train",
                                                   "train.n_test"))
    training = epochs * 3 * forward * n_train
    return {"forward": forward, "every_epoch": training + epochs * forward * n_test,
            "plain": training + forward * n_test}


# --- the benchmark ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3, help="solo runs per engine and model")
    parser.add_argument("--experiment-runs", type=int, default=6,
                        help="runs in one process; the later ones give the per-run figure")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--quick", action="store_true",
                        help="tiny recipe, one repetition: checks that the script runs")
    parser.add_argument("--extras", action="store_true",
                        help="also: model.fit, worker processes, threads, oneDNN, batch norm's "
                             "share, bfloat16")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "training-figures.md")
    parser.add_argument("--worker", nargs="+")
    args = parser.parse_args()
    if args.worker:
        mode, model, recipe, *seeds = args.worker
        print(json.dumps(worker(mode, model, [int(s) for s in seeds], json.loads(recipe))))
        return
    recipe = {**RECIPE, **(QUICK if args.quick else {})}
    if args.quick:
        args.reps, args.experiment_runs = 1, 2

    lines: list[str] = []

    def figure(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    cores = os.cpu_count() or 1
    peak = PEAK_FLOPS_PER_CORE * cores
    figure(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    figure(f"machine {platform.machine()}, {cores} cores, {cpu_model()}")
    figure(f"versions {_versions()}")
    settings = ", ".join(f"{key.split('.')[1]} {value}" for key, value in recipe.items())
    quick = " (--quick: a check that the script runs, not a measurement)" if args.quick else ""
    figure(f"recipe {settings}{quick}")
    figure(_load_line("at start", cores))

    for model in args.models:
        solo: dict[str, list[float]] = {}
        solo_cpu: dict[str, list[float]] = {}
        for rep in range(args.reps):
            for mode in (*PAIRZOO, *REFERENCES):  # alternating, one process each
                result = run(mode, model, [rep], recipe)
                solo.setdefault(mode, []).append(result["seconds"][0])
                solo_cpu.setdefault(mode, []).append(result["cpu"][0])
        med = {mode: statistics.median(times) for mode, times in solo.items()}
        med_cpu = {mode: statistics.median(times) for mode, times in solo_cpu.items()}
        figure(f"{model} solo run seconds (median of {args.reps}): "
               + ", ".join(f"{mode} {seconds:.2f}" for mode, seconds in med.items()))
        figure(f"{model} solo run CPU seconds, all threads (median of {args.reps}): "
               + ", ".join(f"{mode} {seconds:.2f}" for mode, seconds in med_cpu.items())
               + " (PyTorch's OpenMP threads spin while they wait: CPU time flatters pairzoo)")
        experiment = {mode: run(mode, model, list(range(args.experiment_runs)), recipe)
                      for mode in PAIRZOO}
        for mode, result in experiment.items():
            per_run = statistics.median(result["seconds"][1:])  # the runs that reuse the trace
            figure(f"{model} {mode} per run inside an experiment {per_run:.2f} s (median of "
                   f"runs 2-{args.experiment_runs} of one process; the first, tracing, "
                   f"{result['seconds'][0]:.2f} s)")
            for reference in REFERENCES:
                figure(f"{model} {mode}/{reference}: solo {med[mode] / med[reference]:.2f}x, "
                       f"inside an experiment {per_run / med[reference]:.2f}x")
            flops = run_flops(model, recipe)
            work = flops["every_epoch" if PEER[mode] == "torch_like" else "plain"]
            for label, seconds in (("solo", med[mode]), ("inside an experiment", per_run)):
                achieved = work / seconds
                figure(f"{model} {mode} {label}: {achieved / 1e9:.1f} GFLOP/s = "
                       f"{100 * achieved / peak:.0f} % of the {peak / 1e9:.0f} GFLOP/s FP32 peak "
                       f"({flops['forward'] / 1e6:.2f} MFLOP forward per pair)")
            per_cpu = work / statistics.median(result["cpu"][1:])
            figure(f"{model} {mode} inside an experiment, per CPU-second: "
                   f"{per_cpu / 1e9:.1f} GFLOP = {100 * per_cpu / PEAK_FLOPS_PER_CORE:.0f} % of "
                   "one core's peak (the load-independent view of the same work)")
        for reference in REFERENCES:
            key = "plain" if reference == "torch_plain" else "every_epoch"
            achieved = run_flops(model, recipe)[key] / med[reference]
            figure(f"{model} {reference}: {achieved / 1e9:.1f} GFLOP/s = "
                   f"{100 * achieved / peak:.0f} % of peak")
        figure(_load_line(f"after {model}", cores))

    if args.extras:
        _extras(recipe, figure)
    figure(_load_line("at end", cores))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Training speed figures (benchmarks/bench_training.py)\n\n"
                        "The discussion is in training.md; these are the script's own lines.\n\n"
                        + "\n".join(f"- {line}" for line in lines) + "\n")
    print(f"wrote {args.out}")


def _extras(recipe: dict, figure) -> None:
    """The older questions: model.fit, worker processes, threads, oneDNN, batch norm, bf16."""
    model = "siamese_fullyconv"
    fit, fast = run("fit", model, [0], recipe), run("pairzoo", model, [0], recipe)
    figure(f"{model} model.fit solo {fit['seconds'][0]:.2f} s vs the fast path "
           f"{fast['seconds'][0]:.2f} s")
    one = run("pairzoo", model, list(range(10)), recipe)["wall"]
    start = time.perf_counter()
    halves = [spawn("pairzoo", model, list(range(k, 10, 2)), recipe,
                    {"PAIRZOO_TF_THREADS": "1,1"}) for k in (0, 1)]
    for process in halves:
        process.communicate()
    two = time.perf_counter() - start
    figure(f"{model} ten seeds wall: one process {one:.1f} s, two workers {two:.1f} s "
           f"({one / two:.2f}x)")
    for family_model in ("siamese_fullyconv", "two_channel_baseline"):
        timings = []
        for threads in ("1,2", "2,1", "2,2", "1,1"):
            result = run("pairzoo", family_model, [0, 1], recipe,
                         {"PAIRZOO_TF_THREADS": threads})
            timings.append(f"{threads} {result['seconds'][1]:.2f} s")
        figure(f"{family_model} threads intra,inter (second run): " + ", ".join(timings))
    fp32 = run("pairzoo", model, [0, 1, 2], recipe)
    plain = run("pairzoo", model, [0, 1, 2], recipe, {"TF_ENABLE_ONEDNN_OPTS": "0"})
    on_s, off_s = (statistics.median(r["seconds"][1:]) for r in (fp32, plain))
    figure(f"{model} oneDNN kernels on (pairzoo's default) {on_s:.2f} s vs off {off_s:.2f} s "
           f"per run (reused trace): {off_s / on_s:.2f}x")
    no_bn_s = statistics.median(run("nobn", model, [0, 1, 2], recipe)["seconds"][1:])
    figure(f"{model} without its batch-norm layers {no_bn_s:.2f} s vs {on_s:.2f} s per run: "
           f"batch norm is {100 * (1 - no_bn_s / on_s):.0f} % of the time")
    bf16 = run("bf16", model, [0, 1, 2], recipe)
    bf16_s = statistics.median(bf16["seconds"][1:])
    figure(f"{model} bfloat16 mixed precision: {bf16_s:.2f} s vs float32 {on_s:.2f} s per run "
           f"(reused trace); test error {statistics.mean(bf16['test_error']):.2f} % vs "
           f"{statistics.mean(fp32['test_error']):.2f} % (seeds 0-2)")


def _load_line(when: str, cores: int) -> str:
    load = os.getloadavg()[0]
    busy = load > BUSY_LOAD_PER_CORE * cores
    return (f"load average {when} {load:.2f} on {cores} cores"
            + (" (BUSY: other work on the machine; ratios flatter pairzoo, do not quote them)"
               if busy else " (quiet)"))


def _versions() -> str:
    from pairzoo.training import package_versions

    return ", ".join(f"{k} {v}" for k, v in package_versions().items())


if __name__ == "__main__":
    main()
