"""Metrics on a pair set, and the choice of device (CPU or the first GPU of the backend).

Every rate is in percent (test error, accuracy, F1, AUC, digit accuracy), rounded to what the
test set can resolve, and computed from numpy outputs, so evaluation runs the same on every
backend.
"""

from __future__ import annotations

import contextlib
import math

import keras
import numpy as np

from pairzoo.data import PairSet
from pairzoo.errors import PairzooError
from pairzoo.interface import reads_less_equal

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


def predict_in_training_mode(model: keras.Model, pairs: PairSet,
                             batch_size: int) -> dict[str, np.ndarray]:
    """Outputs as report 001's authors measured them: model(batch, training=True) on test
    batches of `batch_size` (batch norm on each batch's own statistics, dropout dropping),
    without keeping what that does to the model (batch norm's moving statistics, seed
    states): every variable is restored afterwards."""
    saved = [v.numpy() for v in model.non_trainable_variables]
    try:
        parts = [model(pairs.pairs[start:start + batch_size], training=True)
                 for start in range(0, len(pairs), batch_size)]
    finally:
        for variable, value in zip(model.non_trainable_variables, saved, strict=True):
            variable.assign(value)
    return {k: np.concatenate([np.asarray(part[k]) for part in parts]) for k in parts[0]}


def decimals_for(n: int) -> int:
    """Decimals of a percentage counted over `n` items: those that show its step, 100/n
    points, exactly (1,000 pairs: 0.1, one decimal; 5,000: 0.02, two; 400 digits: 0.25, two),
    or one more than the step's first significant decimal when it has no short form."""
    step = 100 / n
    for places in range(5):
        if abs(round(step, places) - step) < 1e-9:
            return places
    return min(4, math.ceil(-math.log10(step)) + 1)


def score(outputs: dict[str, np.ndarray], pairs: PairSet) -> dict[str, float]:
    """Every rate in percent, rounded to what the test set resolves: test_error,
    test_accuracy, f1 and auc for `compare`; digit_accuracy where there are digit outputs.

    Errors and accuracies are exact counts, `compare` read by the one rule every pairzoo output
    uses (pairzoo.interface.reads_less_equal: above 0.5, as keras.metrics.BinaryAccuracy
    reads it); F1 and AUC come from keras.metrics."""
    truth = pairs.compare.astype("float32")[:, None]
    prob = outputs["compare"].astype("float32")
    n = len(truth)
    correct = int((reads_less_equal(prob) == (truth > 0.5)).sum())
    places = decimals_for(n)
    f1 = keras.metrics.F1Score(threshold=0.5)
    f1.update_state(truth, prob)
    auc = keras.metrics.AUC(num_thresholds=1000)
    auc.update_state(truth, prob)
    metrics = {"test_error": round(100 * (n - correct) / n, places),
               "test_accuracy": round(100 * correct / n, places),
               "f1": round(100 * float(np.asarray(f1.result()).ravel()[0]), places + 1),
               "auc": round(100 * float(auc.result()), places + 1)}
    if "digit_a" in outputs:
        hits = sum(int((outputs[side].argmax(-1) == pairs.digits[:, i]).sum())
                   for i, side in enumerate(("digit_a", "digit_b")))
        metrics["digit_accuracy"] = round(100 * hits / (2 * n), decimals_for(2 * n))
    return metrics


def evaluate(model: keras.Model, pairs: PairSet, device: str | None = None,
             protocol: str = "inference", batch_size: int = 100) -> dict[str, float]:
    """Metrics of `model` on `pairs` (see score). `protocol="training_mode"` measures as
    report 001's authors did (predict_in_training_mode) and adds `inference_test_error`, the
    same model measured the right way, so both stand side by side."""
    with device_scope(device):
        metrics = score(predict(model, pairs), pairs)
        if protocol == "inference":
            return metrics
        if protocol != "training_mode":
            raise PairzooError(f"unknown evaluation protocol {protocol!r}")
        authors = score(predict_in_training_mode(model, pairs, batch_size), pairs)
        return {**authors, "inference_test_error": metrics["test_error"]}
