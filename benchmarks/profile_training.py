"""Where a training epoch's time goes, from TensorFlow's profiler.

    python benchmarks/profile_training.py [--models siamese_fullyconv siamese_resnet]
                                          [--epochs 3] [--keras-bn] [--out FILE]

For each model: one run of the fast path traces the epoch function (recipe of issue 16: Adam
1e-3, batch 100, 1,000 train and 1,000 test pairs); one more epoch warms it; then --epochs
epochs run under `tf.profiler.experimental` and the trace (XSpace) is read back: every op's
self time on TensorFlow's compute threads, summed by phase (training forward, backward,
optimizer, losses and metrics, the per-epoch test evaluation), by kind of layer, and by op
type. Shares of op time are what to read: the profiler slows ops down a little, and a
machine shared with other work stretches every figure. --keras-bn profiles Keras's own
batch-norm layer instead of pairzoo's fused one. Prints Markdown; --out also writes it.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import platform
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)

RECIPE = {"train.optimizer": "adam", "train.learning_rate": 1e-3, "train.batch_size": 100,
          "train.n_train": 1000, "train.n_test": 1000}
EXECUTOR = "ExecutorState::Process"  # the executor's span around the ops it runs
KINDS = {  # op type -> kind of layer (a batch-norm layer's own scope wins over these)
    "convolution": ("Conv2D", "_FusedConv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput",
                    "BiasAdd", "BiasAddGrad"),
    "pooling": ("MaxPool", "MaxPoolGrad", "AvgPool", "AvgPoolGrad"),
    "dense": ("MatMul", "_FusedMatMul"),
    "activation": ("Relu", "ReluGrad", "Softmax", "Sigmoid", "SigmoidGrad"),
}


def profile(model: str, epochs: int, keras_bn: bool) -> dict:
    import numpy as np
    import tensorflow as tf

    if keras_bn:
        import keras

        from pairzoo.towers import blocks

        blocks.BatchNormalization = keras.layers.BatchNormalization
    from pairzoo.training import train

    result = train(model, seed=0, overrides={**RECIPE, "train.epochs": 1}, loop="fast")
    trainer = result._trainer
    n = int(trainer.train_x.shape[0])
    orders = [tf.constant(np.random.default_rng(i).permutation(n), dtype=tf.int32)
              for i in range(epochs + 1)]
    trainer._epoch(orders[0])  # warm
    with tempfile.TemporaryDirectory(prefix="pairzoo-profile-") as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for order in orders[1:]:
            trainer._epoch(order)
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
        ops = _op_self_times(Path(path).read_bytes())
    threads = tf.config.threading.get_intra_op_parallelism_threads(), \
        tf.config.threading.get_inter_op_parallelism_threads()
    return {"model": model, "wall": wall / epochs, "ops": ops, "threads": threads,
            "model_scope": trainer.model.name, "epochs": epochs}


def _op_self_times(xspace: bytes) -> list[tuple[str, str, float]]:
    """(op name, op type, self seconds) for every op executed on TF's compute threads, and
    (EXECUTOR, EXECUTOR, seconds) for the executor's time around them."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(xspace)
    ops = []
    for plane in space.planes:
        metadata = plane.event_metadata
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            # ops ("scope/name:Type"), and the executor's own spans around them
            events = sorted(((e.offset_ps, e.duration_ps, metadata[e.metadata_id])
                             for e in line.events
                             if metadata[e.metadata_id].display_name
                             or metadata[e.metadata_id].name == EXECUTOR),
                            key=lambda item: (item[0], -item[1]))
            stack: list[list] = []  # [end, index] of the ops that contain the current one
            for offset, duration, meta in events:
                while stack and stack[-1][0] <= offset:
                    stack.pop()
                if meta.name == EXECUTOR:  # its self time: scheduling between ops
                    ops.append([EXECUTOR, EXECUTOR, duration / 1e12])
                else:
                    ops.append([meta.name.rsplit(":", 1)[0], meta.display_name,
                                duration / 1e12])
                if stack:  # nested: its time is not its parent's own
                    ops[stack[-1][1]][2] -= duration / 1e12
                stack.append([offset + duration, len(ops) - 1])
    return [tuple(op) for op in ops]


def phase(name: str, scope: str) -> str:
    if name == EXECUTOR:
        return "TF executor (scheduling between ops)"
    if name.startswith("while/"):  # the training steps (the epoch's loop)
        if "gradient_tape" in name:
            return "backward"
        if "/adam/" in name.lower() or "/sgd/" in name.lower():
            return "optimizer"
        if f"/{scope}" in name:
            return "training forward"
        return "losses, metrics, batches"
    if name.startswith(scope):
        return "test evaluation (forward)"
    return "test losses and metrics, other"


def kind(name: str, op_type: str) -> str:
    if name == EXECUTOR:
        return "TF executor (scheduling between ops)"
    if "_bn" in name or "batch_norm" in name.lower():
        return "batch norm"
    for label, types in KINDS.items():
        if op_type in types:
            return label
    if "/adam/" in name.lower():
        return "optimizer"
    return "other"


def report(result: dict, label: str) -> list[str]:
    ops, scope = result["ops"], result["model_scope"]
    total = sum(seconds for _, _, seconds in ops)
    intra, inter = result["threads"]
    lines = [f"### {result['model']}{label}", "",
             f"- epoch wall time {result['wall']:.3f} s under the profiler (the machine's "
             f"load: see the `uptime` lines); op time {total / result['epochs']:.3f} s per "
             f"epoch on TF's threads (intra {intra}, inter {inter}): ops busy "
             f"{100 * total / result['epochs'] / (result['wall'] * max(inter, 1)):.0f} % of "
             f"{max(inter, 1)} thread(s) x wall", ""]
    for title, key in (("phase", lambda n, t: phase(n, scope)), ("kind of layer", kind),
                       ("op type", lambda n, t: t)):
        sums: collections.Counter = collections.Counter()
        for name, op_type, seconds in ops:
            sums[key(name, op_type)] += seconds
        lines += [f"| {title} | share of op time |", "|---|---:|"]
        top = sums.most_common(12 if title == "op type" else None)
        lines += [f"| {k} | {100 * v / total:.1f} % |" for k, v in top]
        if title == "op type" and len(sums) > len(top):
            rest = total - sum(v for _, v in top)
            lines.append(f"| {len(sums) - len(top)} other op types | {100 * rest / total:.1f} % |")
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["siamese_fullyconv", "siamese_resnet"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--keras-bn", action="store_true",
                        help="Keras's batch-norm layer instead of pairzoo's fused one")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "KERAS_BN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a fresh process per model: its own thread pools, its own trace
        import pickle
        import sys

        model, keras_bn = args.one
        sys.stdout.buffer.write(pickle.dumps(profile(model, args.epochs, keras_bn == "1")))
        return
    import pickle
    import sys

    lines = ["# Where the training time goes (benchmarks/profile_training.py)", "",
             f"- date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine {platform.machine()}, "
             f"{os.cpu_count()} cores; `uptime`: {_uptime()}",
             f"- recipe: Adam 1e-3, batch 100, 1,000 train and 1,000 test pairs; "
             f"{args.epochs} epochs profiled after a traced and a warm one; batch norm: "
             + ("Keras's layer" if args.keras_bn else "pairzoo's (fused on TensorFlow)"), ""]
    for model in args.models:
        out = subprocess.run([sys.executable, __file__, "--one", model,
                              "1" if args.keras_bn else "0", "--epochs", str(args.epochs)],
                             capture_output=True, check=True)
        result = pickle.loads(out.stdout)
        lines += report(result, " (Keras's batch norm)" if args.keras_bn else "")
    lines.append(f"- `uptime` at the end: {_uptime()}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()[0]:.2f}"


if __name__ == "__main__":
    main()
