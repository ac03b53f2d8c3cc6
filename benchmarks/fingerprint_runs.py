"""Does a change to the training code leave every run as it was? A hash of each short run's
weights, with its test error, to compare before and after the change.

    python benchmarks/fingerprint_runs.py /tmp/after.json    # with the change
    git stash && python benchmarks/fingerprint_runs.py /tmp/before.json && git stash pop
    cmp /tmp/before.json /tmp/after.json                     # silent: the same bits

Every zoo entry but the distilled one trains seeds 0, 1 and 0 again through the fast loop in
one process (the third reuses the trained trainer), 2 epochs on 200 pairs; two stacks of three
(siamese_vgg_aug: augmentation and dropout; siamese_fullyconv); the distilled entry twice, with
teachers cut to one epoch on 64 pairs. About 1-2 minutes on 2 cores. Runs in a temporary
folder (the distilled entry keeps its teachers under runs/kept). Bits are compared on one
machine: other CPUs (oneDNN's kernels differ with AVX-512) give other bits.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import pairzoo  # noqa: F401  (first: its quiet start must precede TensorFlow's import)
from pairzoo import registry
from pairzoo.registry import get_preset, list_models
from pairzoo.runs import RunSpec
from pairzoo.stacked import StackedTrainer
from pairzoo.training import train

SHORT = {"train.epochs": 2, "train.n_train": 200, "train.n_test": 200}
TINY_TEACHER = {"train.epochs": 1, "train.warmup_epochs": 0, "train.n_train": 64,
                "train.n_test": 64}
TINY_STUDENT = {"train.epochs": 1, "train.n_train": 64, "train.n_test": 64,
                "train.batch_size": 32}


def digest(arrays) -> str:
    hashed = hashlib.sha256()
    for array in arrays:
        hashed.update(np.ascontiguousarray(array).tobytes())
    return hashed.hexdigest()[:16]


def fingerprints() -> dict:
    out = {}
    for name in list_models():
        if get_preset(name).train.teacher:
            continue
        for i, seed in enumerate((0, 1, 0)):
            result = train(name, seed=seed, overrides=SHORT, loop="fast")
            out[f"{name}/{i}-seed{seed}"] = [digest(result.model.get_weights()),
                                             result.metrics["test_error"]]
    for name, seeds in (("siamese_vgg_aug", [3, 0, 7]), ("siamese_fullyconv", [1, 2, 3])):
        preset = get_preset(name, **SHORT)
        stack = StackedTrainer(preset, 200, 200, len(seeds))
        stack.reset([(seed, *RunSpec(preset, seed).pairs()) for seed in seeds])
        for seed, member in zip(seeds, stack.fit(seeds, 2), strict=True):
            out[f"stack/{name}/seed{seed}"] = digest(member.state.weights)
    preset_of = registry.get_preset

    def tiny_teachers(name, **overrides):
        return preset_of(name, **({**TINY_TEACHER, **overrides}
                                  if name == "siamese_vgg_elastic" else overrides))

    registry.get_preset = tiny_teachers
    for seed in (0, 1):
        result = train("siamese_vgg_distilled", seed=seed, overrides=TINY_STUDENT)
        out[f"distilled/seed{seed}"] = [digest(result.model.get_weights()),
                                        result.metrics["test_error"]]
    return out


def main() -> None:
    target = Path(sys.argv[1]).resolve()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pairzoo-fingerprint-") as work:
        os.chdir(work)
        runs = fingerprints()
    target.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
    print(f"{len(runs)} runs in {time.perf_counter() - start:.0f} s -> {target}")


if __name__ == "__main__":
    main()
