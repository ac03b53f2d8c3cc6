"""Where a solo `pairzoo train` run's time goes beyond the bare graph, phase by phase.

    python benchmarks/profile_solo.py [--model siamese_argmax] [--reps 3]

One fresh process per repetition (a solo run pays every one-off cost) does what
`pairzoo.training.train` does, timing each phase: importing TensorFlow and Keras, loading the
pairs, building and compiling the model and its optimizer (the trainer), re-initialising it for
the run's seed, tracing the epoch function, its first call (TensorFlow's graph optimisation and
kernel set-up, plus one epoch), the remaining epochs, and the final evaluation. The epoch
function is traced both as pairzoo writes it (tf.while_loop, autograph off) and through
autograph, as it was written before issue 26 (an otherwise identical graph). Writes the median
of each phase to benchmarks/results/solo-profile.md with date, machine and load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE = {"train.optimizer": "adam", "train.learning_rate": 1e-3, "train.epochs": 25,
          "train.batch_size": 100, "train.n_train": 1000, "train.n_test": 1000}
PHASES = ("import", "pairs", "trainer", "reset", "trace", "first call", "other epochs",
          "evaluation")


def phases(model: str, autograph: bool) -> dict[str, float]:
    clock = {"start": time.perf_counter()}

    def mark(name: str) -> None:
        clock[name] = time.perf_counter()

    import pairzoo  # noqa: F401  (first: its quiet start precedes TensorFlow's import)

    # isort: split
    import tensorflow as tf

    from pairzoo.config import apply_overrides
    from pairzoo.evaluation import evaluate
    from pairzoo.fastpath import CompiledTrainer, shuffle_rng
    from pairzoo.registry import get_preset
    from pairzoo.runs import RunSpec

    mark("import")
    preset = apply_overrides(get_preset(model), RECIPE)
    train, test = RunSpec(preset, 0).pairs()
    mark("pairs")
    trainer = CompiledTrainer(preset, len(train), len(test))
    if autograph:  # the epoch loop as written before: a Python loop autograph converts
        trainer._epoch = tf.function(_autograph_epoch(trainer))
    mark("trainer")
    trainer.reset(0, train, test)
    mark("reset")
    rng = shuffle_rng(0)
    orders = [tf.constant(rng.permutation(len(train)), tf.int32) for _ in range(25)]
    trainer._epoch.get_concrete_function(orders[0])
    mark("trace")
    trainer._epoch(orders[0])["loss"].numpy()
    mark("first call")
    for order in orders[1:]:
        trainer._epoch(order)["loss"].numpy()
    mark("other epochs")
    evaluate(trainer.model, test, batch_size=preset.train.batch_size)
    mark("evaluation")
    names = list(clock)
    return {b: clock[b] - clock[a] for a, b in zip(names, names[1:], strict=False)}


def _autograph_epoch(trainer):
    import tensorflow as tf

    def epoch(order):
        n = tf.shape(order)[0]
        sums = tf.zeros(len(trainer._log_names()))
        finite = tf.constant(True)
        for start in tf.range(0, n, trainer.batch_size):
            batch = trainer._batch_forward(order[start:start + trainer.batch_size])
            if not tf.math.is_finite(batch.total):
                finite = tf.constant(False)
                break
            sums += trainer._batch_update(batch)
        return trainer._epoch_logs(sums, n, finite)

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="siamese_argmax")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "solo-profile.md")
    parser.add_argument("--worker", nargs=2)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(phases(args.worker[0], args.worker[1] == "autograph")))
        return
    load = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"while_loop": [], "autograph": []}
    for _ in range(args.reps):  # alternating, one fresh process each
        for variant in runs:
            out = subprocess.run([sys.executable, __file__, "--worker", args.model, variant],
                                 capture_output=True, text=True, check=True).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    lines = [f"# Where a solo run's time goes ({args.model}; benchmarks/profile_solo.py)", "",
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
             f"{load:.2f} at the start and {os.getloadavg()[0]:.2f} at the end; recipe "
             "Adam 1e-3, batch 100, 25 epochs, 1,000 train and 1,000 test pairs; median of "
             f"{args.reps} fresh processes per variant, seconds.", "",
             "| phase | epoch loop as tf.while_loop (pairzoo) | through autograph (before) |",
             "|---|---|---|"]
    for phase in PHASES:
        medians = [statistics.median(r[phase] for r in runs[v]) for v in runs]
        lines.append(f"| {phase} | {medians[0]:.2f} | {medians[1]:.2f} |")
    one_off = [statistics.median(r["first call"] - r["other epochs"] / 24 for r in runs[v])
               for v in runs]
    lines.append(f"| first call beyond one epoch (graph optimisation, kernel set-up) | "
                 f"{one_off[0]:.2f} | {one_off[1]:.2f} |")
    train_seconds = [statistics.median(sum(r[p] for p in ("trace", "first call", "other epochs"))
                                       for r in runs[v]) for v in runs]
    lines.append(f"| **train_seconds** (trace + epochs) | **{train_seconds[0]:.2f}** | "
                 f"**{train_seconds[1]:.2f}** |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
