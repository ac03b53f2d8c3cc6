"""Train one run (a RunSpec) with either loop, and write its run folder.

    result = train("siamese_fullyconv", seed=0)          # or train(RunSpec(...))
    save_run(result)                                     # runs/siamese_fullyconv/TIME-seed0/

Two training loops give the same kind of result: "fast" (pairzoo.fastpath, traced epochs,
TensorFlow only) and "fit" (`model.fit`, any backend); "auto" picks fast where it can honour
the run's callbacks. Whichever trained it, a run's model is compiled with its recipe and holds
its optimizer state, so `model.fit` continues from it and its saved `model.keras` loads compiled.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from pairzoo.config import Preset, apply_overrides
from pairzoo.data import DEFAULT_SOURCE, PairSet
from pairzoo.errors import DivergedError, PairzooError
from pairzoo.evaluation import device_scope, evaluate
from pairzoo.models import build_model, count_trainable_params
from pairzoo.recipe import compile_model
from pairzoo.registry import get_preset
from pairzoo.runs import RunSpec, check_run_dir, default_run_dir, move_into_place

LOOPS = ("auto", "fast", "fit")
log = logging.getLogger("pairzoo")


@dataclass
class RunResult:
    """One finished training run: its spec, per-epoch history, test metrics and model."""

    spec: RunSpec
    history: pd.DataFrame
    metrics: dict
    pools: dict = field(default_factory=dict)  # where its train and test pairs came from
    loop: str = "fit"
    _model: keras.Model | None = None
    _state: object = None  # fast loop: the trained state, materialised into _model on demand

    @property
    def preset(self) -> Preset:
        return self.spec.preset

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def data(self) -> dict:
        """The run's data sources and where its pairs came from."""
        return {"train_data": self.spec.train_data, "test_data": self.spec.test_source,
                **self.pools}

    @property
    def model(self) -> keras.Model:
        """The trained model, compiled with its recipe and holding its optimizer state."""
        if self._model is None:
            self._model = self._state.materialise(self.preset)
            self._state = None
        return self._model


def train(
    run: str | Preset | RunSpec,
    *,
    seed: int = 0,
    train_data: str = DEFAULT_SOURCE,
    test_data: str | None = None,
    overrides: dict | None = None,
    pairs: tuple[PairSet, PairSet] | None = None,
    device: str | None = None,
    callbacks: list | None = None,
    loop: str = "auto",
    init_from: str | Path | None = None,
) -> RunResult:
    """Train a zoo model on its run's pairs; evaluate it on the test pairs.

    `run` is a zoo name, a Preset, or a whole RunSpec (then `seed`, `train_data` and
    `test_data` come from it). The same run on the same machine gives the same pairs, initial
    weights, batch order and metrics, whatever ran before it in the process. `pairs` replaces
    the run's own (train, test) pairs with yours. `init_from` fine-tunes: a run folder,
    `.keras` file, or "zoo" (the entry's release weights) to start from. Raises DivergedError
    when the loss or the weights become non-finite.
    """
    if loop not in LOOPS:
        raise PairzooError(f"unknown training loop {loop!r}; use one of {', '.join(LOOPS)}")
    spec = _spec(run, seed, train_data, test_data, overrides, init_from)
    train_pairs, test_pairs = pairs if pairs is not None else spec.pairs()
    callbacks = list(callbacks or [])
    fast = _choose_loop(loop, callbacks)
    if spec.preset.train.teacher and not fast:
        raise PairzooError(f"{spec.name} distils from teachers, which only the fast loop "
                           "(TensorFlow, epoch-level callbacks) does; use loop='fast'")
    with device_scope(device):
        if fast:
            model, state, history, seconds, extra = _fast(spec, train_pairs, test_pairs,
                                                          callbacks)
        else:
            model, history, seconds = _fit(spec, train_pairs, test_pairs, callbacks)
            state, extra = None, {}
        recipe = spec.preset.train
        metrics = evaluate(model, test_pairs, protocol=recipe.eval_protocol,
                           batch_size=recipe.batch_size)
        metrics.update(extra)
    metrics.update(params=count_trainable_params(model), train_seconds=round(seconds, 3))
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    pools = {"train_pool": train_pairs.source, "test_pool": test_pairs.source}
    result = RunResult(spec, history, metrics, pools, "fast" if fast else "fit")
    if fast:
        result._state = state  # the trainer's model is re-initialised by its next run
    else:
        result._model = model
    if spec.preset.train.teacher:
        _keep_student(result)
    return result


def _keep_student(result: RunResult) -> None:
    """A distilled student is kept like its teachers (a release of the same seed reuses it);
    one already kept stays."""
    from pairzoo.distillation import kept_folder

    folder = kept_folder(result.spec)
    if not (folder / "model.keras").is_file():
        save_run(result, folder)


def kept_result(spec: RunSpec) -> RunResult | None:
    """The kept model of this run's training (pairzoo.distillation.kept_folder) as a RunResult
    measured on the run's own test pairs, its history and training time as kept; None if
    none is kept. Training is deterministic, so it is what training again would give."""
    from pairzoo.distillation import kept_folder
    from pairzoo.runs import load_model

    folder = kept_folder(spec)
    if not (folder / "model.keras").is_file():
        return None
    model = load_model(folder)
    kept = json.loads((folder / "metrics.json").read_text())
    train_pairs, test_pairs = spec.pairs()
    recipe = spec.preset.train
    metrics = evaluate(model, test_pairs, protocol=recipe.eval_protocol,
                       batch_size=recipe.batch_size)
    metrics.update(params=kept["params"], train_seconds=kept["train_seconds"])
    pools = {"train_pool": train_pairs.source, "test_pool": test_pairs.source}
    return RunResult(spec, pd.read_csv(folder / "history.csv"), metrics, pools, "fast",
                     _model=model)


def _spec(run, seed, train_data, test_data, overrides, init_from) -> RunSpec:
    if isinstance(run, RunSpec):
        spec = run
    else:
        preset = run if isinstance(run, Preset) else get_preset(run)
        spec = RunSpec(preset, seed, train_data, test_data)
    if overrides:
        spec = spec.replace(preset=apply_overrides(spec.preset, overrides))
    if init_from is not None:
        spec = spec.replace(init_from=str(init_from))
    return spec


# --- which loop ----------------------------------------------------------------------------

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
                "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end")


def needs_batch_hooks(callback) -> bool:
    """Whether a Keras callback needs per-batch (or evaluation) hooks, which the fast loop
    does not call. Keras's own callbacks are judged by their settings; any other by whether it
    overrides a batch or evaluation hook."""
    cb = keras.callbacks
    if isinstance(callback, (cb.ModelCheckpoint, cb.BackupAndRestore)):
        return callback.save_freq != "epoch"
    if isinstance(callback, cb.TensorBoard):
        return callback.update_freq != "epoch" or callback._should_trace
    if isinstance(callback, cb.LambdaCallback):  # it sets the hooks it was given on itself
        return any(hook in vars(callback) for hook in _BATCH_HOOKS)
    if isinstance(callback, cb.TerminateOnNaN):
        return False  # the fast loop applies its rule itself
    return any(getattr(type(callback), hook) is not getattr(cb.Callback, hook)
               for hook in _BATCH_HOOKS)


def _choose_loop(loop: str, callbacks: list) -> bool:
    """True for the fast loop."""
    on_tensorflow = keras.backend.backend() == "tensorflow"
    if loop == "fit":
        return False
    if loop == "fast" and not on_tensorflow:
        raise PairzooError("the fast training loop needs the TensorFlow backend; use loop='fit'")
    if not on_tensorflow:
        return False
    batch_level = [type(cb).__name__ for cb in callbacks if needs_batch_hooks(cb)]
    if batch_level:
        log.warning("pairzoo: %s needs batch-level hooks; training with model.fit instead of "
                    "the fast loop", ", ".join(batch_level))
        return False
    return True


# --- the two loops -------------------------------------------------------------------------


def _fast(spec: RunSpec, train_pairs: PairSet, test_pairs: PairSet, callbacks):
    """The traced loop; a distilling preset's teachers are trained (or loaded) first. Returns
    the model, its trained state, history, seconds, and extra metrics (the teachers')."""
    from pairzoo.fastpath import trainer_for

    recipe = spec.preset.train
    teachers, trainer_class = None, None
    if recipe.teacher:
        from pairzoo.distillation import DistillingTrainer, trained_teachers

        trainer_class = DistillingTrainer

        def train_and_keep(teacher, shown, folder):
            save_run(train(teacher, pairs=(train_pairs, test_pairs), loop="fast",
                           callbacks=shown), folder)

        teachers = trained_teachers(spec, train_and_keep, callbacks)
    trainer = trainer_for(spec.preset, len(train_pairs), len(test_pairs), trainer_class)
    trainer.reset(spec.seed, train_pairs, test_pairs)
    if teachers is not None:
        trainer.set_teachers(teachers)
    if spec.init_from is not None:
        trainer.model.set_weights(_initial_weights(spec))
    outcome = trainer.fit(spec.seed, recipe.epochs, callbacks)
    if outcome.diverged_at is not None:
        raise diverged_error(spec, outcome.diverged_at)
    check_finite(trainer.model, spec)
    extra = {}
    if teachers is not None:
        from pairzoo.distillation import teachers_metrics

        extra = teachers_metrics(trainer, test_pairs, recipe.batch_size)
    return trainer.model, trainer.state(), outcome.history, outcome.seconds, extra


def _fit(spec: RunSpec, train_pairs: PairSet, test_pairs: PairSet, callbacks):
    """The plain Keras loop: build (or load, to fine-tune), compile, `model.fit` with the test
    set as validation data."""
    keras.utils.set_random_seed(spec.seed)
    recipe = spec.preset.train
    model = build_model(spec.preset.model, name=spec.name)
    if spec.init_from is not None:
        model.set_weights(_initial_weights(spec))
    compile_model(model, spec.preset)
    outputs = list(model.output_names)
    train_inputs = _fit_inputs(train_pairs, outputs, recipe.batch_size, spec.seed, shuffle=True)
    validation = None
    if recipe.eval_each_epoch:
        test_inputs = _fit_inputs(test_pairs, outputs, 1000, spec.seed, shuffle=False)
        validation = ((test_inputs["x"], test_inputs["y"]) if "y" in test_inputs
                      else test_inputs["x"])
    start = time.perf_counter()
    history = model.fit(**train_inputs, epochs=recipe.epochs, validation_data=validation,
                        callbacks=[*callbacks, keras.callbacks.TerminateOnNaN()], verbose=0)
    seconds = time.perf_counter() - start
    losses = history.history.get("loss", [])
    if losses and not math.isfinite(losses[-1]):  # TerminateOnNaN stopped it
        raise diverged_error(spec, len(losses))
    check_finite(model, spec)
    return model, pd.DataFrame(history.history), seconds


def _initial_weights(spec: RunSpec) -> list:
    """Fine-tuning: the weights the run starts from (a run folder, a .keras file, or "zoo"
    for the entry's release weights), checked to fit the run's architecture."""
    if spec.init_from == "zoo":
        from pairzoo.zoo import load_release_model

        source = load_release_model(spec.name)
    else:
        from pairzoo.runs import load_model

        source = load_model(spec.init_from, compile=False)
    if source.model_config != spec.preset.model:
        raise PairzooError(f"--init-from {spec.init_from}: its architecture differs from "
                           f"{spec.name}'s as configured here; fine-tune with the model "
                           "options it was trained with")
    return source.get_weights()


def _fit_inputs(pairs: PairSet, outputs, batch_size: int, seed: int, shuffle: bool):
    """tf.data on TensorFlow (seeded shuffle each epoch); numpy arrays on other backends."""
    if keras.backend.backend() == "tensorflow":
        from pairzoo.data.pipeline import to_dataset

        # the dataset shuffles itself, seeded; fit's own shuffle flag would only warn
        return {"x": to_dataset(pairs, batch_size, seed if shuffle else None, outputs),
                "shuffle": False}
    return {"x": pairs.pairs, "y": pairs.targets(outputs), "batch_size": batch_size,
            "shuffle": shuffle}


def _nonfinite(model: keras.Model) -> list[str]:
    return [w.path for w in model.weights if not np.isfinite(w.numpy()).all()]


def check_finite(model: keras.Model, spec: RunSpec) -> None:
    bad = _nonfinite(model)
    if bad:
        raise DivergedError(f"{spec.name} (seed {spec.seed}) diverged: {len(bad)} weights are "
                            f"not finite (first: {bad[0]}); lower the learning rate (--lr)")


def diverged_error(spec: RunSpec, epoch: int) -> DivergedError:
    rate = spec.preset.train.learning_rate
    return DivergedError(f"{spec.name} (seed {spec.seed}) diverged in epoch {epoch}: its loss "
                         f"became non-finite at learning rate {rate:g}; nothing was saved. "
                         "Lower the learning rate (--lr)")


# --- the run folder ------------------------------------------------------------------------


def save_run(result: RunResult, out_dir: str | Path | None = None) -> Path:
    """Write the run folder: model.keras (compiled, with optimizer state), config.json,
    history.csv, metrics.json.

    Everything is written into a hidden sibling folder first and renamed into place at the end,
    so an interrupted save never leaves a half-written run folder behind. A default folder
    name taken meanwhile (two runs started in the same second) gets a -2, -3 ... suffix; a
    given `out_dir` that is taken is refused. Errors name the path and the cause.
    """
    chosen = out_dir is None
    out_dir = Path(out_dir) if out_dir is not None else default_run_dir(result.spec)
    check_run_dir(out_dir, must_be_free=not chosen)
    staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        result.model.save(staging / "model.keras")
        config = result.spec.to_config(pools=result.pools, loop=result.loop,
                                       versions=package_versions())
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        result.history.to_csv(staging / "history.csv", index=False)
        metrics = {**result.metrics, "units": "percent"}  # every rate (evaluation.score)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        return move_into_place(staging, out_dir, chosen)
    except OSError as e:
        raise PairzooError(f"could not save the run to {out_dir}: {e.strerror or e} "
                           f"({e.filename or out_dir}); nothing was written there") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def package_versions() -> dict[str, str]:
    """The Keras backend in use, its thread pools (they change results; pairzoo._startup) and
    the installed packages' versions."""
    from pairzoo.versions import installed_versions

    threads = {"tf_threads": ",".join(os.environ.get(f"TF_NUM_{pool}_THREADS", "default")
                                      for pool in ("INTRAOP", "INTEROP"))}
    return {"backend": keras.backend.backend(),
            **(threads if keras.backend.backend() == "tensorflow" else {}),
            **installed_versions()}
