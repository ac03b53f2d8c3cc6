"""Compile (losses, loss weights, metrics) and fit one zoo model; write its run folder.

Loss weights are the whole story of auxiliary losses: `compare` carries `compare_weight`, each
digit output `aux_weight`. An output whose weight is 0, or whose head passes no gradient (argmax),
gets no loss at all, so it costs nothing and shows no meaningless number.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from pairzoo.config import ModelConfig, Preset, TrainConfig
from pairzoo.data import PairSet, load_pairs
from pairzoo.errors import PairzooError
from pairzoo.evaluation import device_scope, evaluate
from pairzoo.models import build_model, count_trainable_params
from pairzoo.registry import get_preset
from pairzoo.seeds import check_seed


def make_optimizer(recipe: TrainConfig) -> keras.optimizers.Optimizer:
    learning_rate = recipe.learning_rate
    if recipe.lr_schedule == "cosine":
        steps = recipe.epochs * math.ceil(recipe.n_train / recipe.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, steps)
    common = {"weight_decay": recipe.weight_decay or None, "use_ema": recipe.ema_momentum > 0,
              "ema_momentum": recipe.ema_momentum or 0.99}
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=recipe.momentum, **common)
    return keras.optimizers.Adam(learning_rate, **common)


def loss_setup(config: ModelConfig) -> tuple[dict, dict]:
    """(losses, loss_weights) keyed by output name, for the outputs that are trained."""
    losses, weights = {}, {}
    if config.trains_compare:
        losses["compare"] = keras.losses.BinaryCrossentropy()
        weights["compare"] = config.compare_weight
    if config.has_digit_outputs and config.aux_weight > 0:
        for output in ("digit_a", "digit_b"):
            losses[output] = keras.losses.SparseCategoricalCrossentropy()
            weights[output] = config.aux_weight
    return losses, weights


def metric_setup(config: ModelConfig) -> dict:
    """Accuracy on every output; logged as compare_accuracy, digit_a_accuracy, ..."""
    metrics = {"compare": [keras.metrics.BinaryAccuracy(name="accuracy")]}
    if config.has_digit_outputs:
        for output in ("digit_a", "digit_b"):
            metrics[output] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return metrics


def compile_model(model: keras.Model, preset: Preset) -> keras.Model:
    losses, weights = loss_setup(preset.model)
    model.compile(optimizer=make_optimizer(preset.train), loss=losses, loss_weights=weights,
                  metrics=metric_setup(preset.model))
    return model


def _fit_inputs(pairs: PairSet, outputs, batch_size: int, seed: int, shuffle: bool):
    """tf.data on TensorFlow (seeded shuffle each epoch); numpy arrays on other backends."""
    if keras.backend.backend() == "tensorflow":
        from pairzoo.data.pipeline import to_dataset

        # the dataset shuffles itself, seeded; fit's own shuffle flag would only warn
        return {"x": to_dataset(pairs, batch_size, seed if shuffle else None, outputs),
                "shuffle": False}
    return {"x": pairs.pairs, "y": pairs.targets(outputs), "batch_size": batch_size,
            "shuffle": shuffle}


ENGINES = ("auto", "fast", "fit")


@dataclass
class RunResult:
    """One finished training run."""

    preset: Preset
    history: pd.DataFrame
    metrics: dict
    seed: int
    data: dict = field(default_factory=dict)
    _model: keras.Model | None = None
    _trainer: object = None  # the fast path's CompiledTrainer, and its generation at the end
    _generation: int = 0

    @property
    def model(self) -> keras.Model:
        """The trained model. On the fast path the model belongs to a trainer that the next run
        of the same architecture re-initialises; asking for it after that is an error, not
        another run's weights."""
        if self._trainer is not None and self._trainer.generation != self._generation:
            raise PairzooError(
                f"the model of this {self.preset.name} run (seed {self.seed}) was re-used by a "
                "later run; save it (save_run) before training again, or train with engine='fit'"
            )
        return self._model


def train(
    name_or_preset: str | Preset,
    *,
    seed: int = 0,
    train_data: str = "embedded",
    test_data: str | None = None,
    overrides: dict | None = None,
    pairs: tuple[PairSet, PairSet] | None = None,
    device: str | None = None,
    callbacks: list | None = None,
    engine: str = "auto",
) -> RunResult:
    """Train a zoo model on fresh pairs for `seed`; evaluate it on the test pairs.

    The same seed on the same machine gives the same pairs, initial weights, batch order and
    metrics. `engine`: "fast" (a traced epoch function reused across runs of the same
    architecture; TensorFlow only), "fit" (`model.fit`, any backend), "auto" (fast on
    TensorFlow, else fit). Both start from the same seeded initial weights.
    """
    if engine not in ENGINES:
        raise PairzooError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    seed = check_seed(seed)
    preset = name_or_preset if isinstance(name_or_preset, Preset) else get_preset(name_or_preset)
    if overrides:
        from pairzoo.config import apply_overrides

        preset = apply_overrides(preset, overrides)
    recipe = preset.train
    if pairs is None:
        pairs = load_pairs(recipe.n_train, recipe.n_test, seed, train_data, test_data)
    train_pairs, test_pairs = pairs
    fast = engine == "fast" or (engine == "auto" and keras.backend.backend() == "tensorflow")
    if fast and keras.backend.backend() != "tensorflow":
        raise PairzooError("engine 'fast' needs the TensorFlow backend; use engine='fit'")
    trainer = None
    with device_scope(device):
        if fast:
            from pairzoo.fastpath import fast_fit

            trainer, frame, seconds = fast_fit(preset, train_pairs, test_pairs, seed, callbacks)
            model = trainer.model
        else:
            model, frame, seconds = _fit(preset, train_pairs, test_pairs, seed, callbacks)
        metrics = evaluate(model, test_pairs)
    metrics.update(params=count_trainable_params(model), train_seconds=round(seconds, 3))
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    data = {"train_data": train_data, "test_data": test_data or train_data,
            "train_pool": train_pairs.source, "test_pool": test_pairs.source}
    return RunResult(preset, frame, metrics, seed, data, model, trainer,
                     trainer.generation if trainer else 0)


def _fit(preset: Preset, train_pairs: PairSet, test_pairs: PairSet, seed: int, callbacks):
    """The plain Keras path: build, compile, `model.fit` with the test set as validation."""
    keras.utils.set_random_seed(seed)
    recipe = preset.train
    model = compile_model(build_model(preset.model, name=preset.name), preset)
    outputs = list(model.output_names)
    train_inputs = _fit_inputs(train_pairs, outputs, recipe.batch_size, seed, shuffle=True)
    test_inputs = _fit_inputs(test_pairs, outputs, 1000, seed, shuffle=False)
    validation = (test_inputs["x"], test_inputs["y"]) if "y" in test_inputs else test_inputs["x"]
    start = time.perf_counter()
    history = model.fit(**train_inputs, epochs=recipe.epochs, validation_data=validation,
                        callbacks=list(callbacks or []), verbose=0)
    return model, pd.DataFrame(history.history), time.perf_counter() - start


def save_run(result: RunResult, out_dir: str | Path | None = None) -> Path:
    """Write the run folder atomically: model.keras, config.json, history.csv, metrics.json.

    Everything is written into a hidden sibling folder first and renamed into place at the end,
    so an interrupted save never leaves a half-written run folder behind.
    """
    if out_dir is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        out_dir = Path("runs") / result.preset.name / f"{stamp}-seed{result.seed}"
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise PairzooError(f"run folder {out_dir} already exists and is not empty; "
                           "choose another --out")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        result.model.save(staging / "model.keras")
        config = {**result.preset.to_dict(), "seed": result.seed, "data": result.data,
                  "versions": package_versions()}
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        result.history.to_csv(staging / "history.csv", index=False)
        (staging / "metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n")
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def package_versions() -> dict[str, str]:
    """The Keras backend in use and the installed packages' versions."""
    from pairzoo.versions import installed_versions

    return {"backend": keras.backend.backend(), **installed_versions()}
