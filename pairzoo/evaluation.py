"""Metrics on a pair set, and the choice of device (CPU or the first GPU of the backend).

Every metric comes from `keras.metrics`, so evaluation runs the same on every backend.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

from pairzoo.data import PairSet
from pairzoo.errors import PairzooError

DEVICES = ("cpu", "gpu")


def available_gpus() -> list[str]:
    """The GPUs the active Keras backend can see."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        try:
            return [str(d) for d in jax.devices("gpu")]
        except RuntimeError:  # no GPU platform installed
            return []
    if backend == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return []


def device_scope(device: str | None):
    """A context that places computation on the CPU or the first GPU; None = backend default."""
    if device is None:
        return contextlib.nullcontext()
    if device not in DEVICES:
        raise PairzooError(f"unknown device {device!r}; use cpu or gpu")
    if device == "gpu" and not available_gpus():
        raise PairzooError(
            f"--device gpu: the {keras.backend.backend()} backend sees no GPU here; use "
            "--device cpu, or install a GPU build (pip install 'pairzoo[gpu]' for TensorFlow)"
        )
    return keras.device(f"{device}:0")


def predict(model: keras.Model, pairs: PairSet, batch_size: int = 1000) -> dict[str, np.ndarray]:
    outputs = model.predict(pairs.pairs, batch_size=batch_size, verbose=0)
    return {k: np.asarray(v) for k, v in outputs.items()}


def score(outputs: dict[str, np.ndarray], pairs: PairSet) -> dict[str, float]:
    """test_error (%), test_accuracy, f1, auc for `compare`; digit_accuracy where there are
    digit outputs."""
    truth = pairs.compare.astype("float32")[:, None]
    prob = outputs["compare"].astype("float32")
    accuracy = keras.metrics.BinaryAccuracy()
    accuracy.update_state(truth, prob)
    f1 = keras.metrics.F1Score(threshold=0.5)
    f1.update_state(truth, prob)
    auc = keras.metrics.AUC(num_thresholds=1000)
    auc.update_state(truth, prob)
    acc = float(accuracy.result())
    metrics = {"test_error": round(100 * (1 - acc), 4), "test_accuracy": acc,
               "f1": float(np.asarray(f1.result()).ravel()[0]), "auc": float(auc.result())}
    if "digit_a" in outputs:
        digits = keras.metrics.SparseCategoricalAccuracy()
        digits.update_state(pairs.digits[:, 0], outputs["digit_a"])
        digits.update_state(pairs.digits[:, 1], outputs["digit_b"])
        metrics["digit_accuracy"] = float(digits.result())
    return metrics


def evaluate(model: keras.Model, pairs: PairSet, device: str | None = None) -> dict[str, float]:
    with device_scope(device):
        return score(predict(model, pairs), pairs)
