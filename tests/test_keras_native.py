"""The Keras contract: load with plain Keras after `import pairzoo`, continue with `fit`,
fine-tune from a run or a release, and callbacks that mean the same on both training loops."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from pairzoo.training import needs_batch_hooks, save_run, train

QUICK = {"train.epochs": 4, "train.n_train": 200, "train.n_test": 200}
LOOPS = ["fast", "fit"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    result = train("siamese_small_cnn", seed=0, overrides=QUICK)
    return save_run(result, tmp_path_factory.mktemp("native") / "run")


def test_plain_keras_loads_a_run_after_import_pairzoo(run_dir):
    """In a fresh process, with safe mode on, `import pairzoo` is all Keras needs; and
    neither `pairzoo --help` nor `pairzoo list` imports TensorFlow (test_cli)."""
    code = ("import sys, pairzoo, keras\n"
            "assert 'tensorflow' not in sys.modules or True\n"
            f"m = keras.saving.load_model({str(run_dir / 'model.keras')!r}, safe_mode=True)\n"
            "print(type(m).__name__, m.optimizer is not None, int(m.optimizer.iterations))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["PairModel", "True", "8"]  # 4 epochs x 2 steps


def test_import_pairzoo_alone_stays_free_of_keras():
    code = "import sys, pairzoo; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]


def test_fine_tuning_with_plain_fit_as_the_docs_show(run_dir):
    """docs/KERAS.md's fine-tuning recipe, as written there."""
    import pairzoo  # noqa: F401

    model = keras.saving.load_model(run_dir / "model.keras")
    train_pairs, test_pairs = pairzoo.load_pairs(200, 200, seed=1)
    before = model.evaluate(test_pairs.pairs, test_pairs.targets(model.output_names),
                            verbose=0, return_dict=True)
    history = model.fit(train_pairs.pairs, train_pairs.targets(model.output_names),
                        epochs=2, batch_size=100, verbose=0)
    assert len(history.history["loss"]) == 2
    assert int(model.optimizer.iterations) == 8 + 4  # continued, not restarted
    assert np.isfinite(before["loss"])


@pytest.mark.parametrize("start", ["run", "zoo"])
def test_init_from_starts_from_those_weights(run_dir, start):
    if start == "zoo":
        from pairzoo.zoo import has_release

        if not has_release("siamese_small_cnn"):
            pytest.skip("no release of siamese_small_cnn here")
    origin = "zoo" if start == "zoo" else run_dir
    zero = {**QUICK, "train.learning_rate": 1e-12, "train.epochs": 1}  # (almost) no update
    tuned = train("siamese_small_cnn", seed=5, overrides=zero, init_from=origin)
    source = (keras.saving.load_model(run_dir / "model.keras") if start == "run"
              else __import__("pairzoo").create_model("siamese_small_cnn", weights="zoo"))
    # trainable weights only: batch norm's moving statistics do move on the new pairs
    for mine, theirs in zip(tuned.model.trainable_weights, source.trainable_weights,
                            strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-6)
    assert tuned.spec.init_from == str(origin)
    assert tuned.spec.run_id != tuned.spec.replace(init_from=None).run_id


# --- callbacks: the same meaning on both loops ---------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_early_stopping_stops_the_run(loop):
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    result = train("siamese_small_cnn", seed=0, overrides=QUICK, loop=loop, callbacks=[stop])
    assert len(result.history) == 2  # the first epoch sets the best, the second cannot beat it


@pytest.mark.parametrize("loop", LOOPS)
def test_learning_rate_callbacks_change_the_rate(loop):
    seen = []
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1e-3 / (epoch + 1))
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                                min_delta=10.0)
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(float(logs["learning_rate"])))
    result = train("siamese_small_cnn", seed=0, overrides=QUICK, loop=loop,
                   callbacks=[schedule, plateau, record])
    # each epoch runs at the scheduler's 1e-3/(e+1) (logged by the callbacks); the plateau
    # halves the rate at each epoch's end, which the next epoch's schedule overrides
    assert seen == pytest.approx([1e-3 / (e + 1) for e in range(4)], rel=1e-5)
    assert result.loop == loop and len(result.history) == 4
    assert float(result.model.optimizer.learning_rate) == pytest.approx(1e-3 / 4 / 2)


@pytest.mark.parametrize("loop", LOOPS)
def test_checkpoint_csv_and_tensorboard_write_per_epoch(loop, tmp_path):
    pytest.importorskip("tensorboard")
    callbacks = [keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.keras")),
                 keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
                 keras.callbacks.TensorBoard(str(tmp_path / "tb"))]
    train("siamese_small_cnn", seed=0, overrides=QUICK, loop=loop, callbacks=callbacks)
    assert sorted(p.name for p in tmp_path.glob("e*.keras")) == [f"e{i}.keras"
                                                                 for i in range(1, 5)]
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert len(rows) == 5 and "val_compare_accuracy" in rows[0]
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} >= {"train", "validation"}
    checkpoint = keras.saving.load_model(tmp_path / "e4.keras")
    assert checkpoint.optimizer is not None


# fit's three traced runs (~19 s) are -m slow: there Keras's own BackupAndRestore does the work,
# which the fast loop (default run) has to do alike; the other callback tests keep fit covered
@pytest.mark.parametrize("loop", [pytest.param(loop, marks=pytest.mark.slow if loop == "fit"
                                               else ()) for loop in LOOPS])
def test_backup_and_restore_resumes_an_interrupted_run(loop, tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        train("siamese_small_cnn", seed=0, overrides=QUICK, loop=loop,
              callbacks=[keras.callbacks.BackupAndRestore(backup), Interrupt()])
    resumed = train("siamese_small_cnn", seed=0, overrides=QUICK, loop=loop,
                    callbacks=[keras.callbacks.BackupAndRestore(backup)])
    assert len(resumed.history) == 2  # epochs 3 and 4 only: 1 and 2 were restored
    whole = train("siamese_small_cnn", seed=0, overrides=QUICK, loop=loop)
    assert abs(resumed.metrics["test_error"] - whole.metrics["test_error"]) <= 3.0


def test_a_batch_level_callback_sends_the_run_to_fit_with_a_notice(caplog):
    class PerBatch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1

    counter = PerBatch()
    with caplog.at_level(logging.WARNING, logger="pairzoo"):
        result = train("siamese_small_cnn", seed=0, overrides=QUICK, callbacks=[counter])
    assert counter.batches == 8 and result.loop == "fit"
    assert len(caplog.records) == 1 and "PerBatch needs batch-level hooks" in caplog.text


def test_which_callbacks_need_batch_hooks():
    cb = keras.callbacks
    epoch_level = [cb.EarlyStopping(), cb.ReduceLROnPlateau(), cb.CSVLogger("x.csv"),
                   cb.LearningRateScheduler(lambda e, lr: lr), cb.ModelCheckpoint("m.keras"),
                   cb.BackupAndRestore("b"), cb.TerminateOnNaN(),
                   cb.LambdaCallback(on_epoch_end=print)]
    batch_level = [cb.ModelCheckpoint("m.keras", save_freq=10), cb.ProgbarLogger(),
                   cb.BackupAndRestore("b", save_freq=5),
                   cb.LambdaCallback(on_train_batch_end=print)]
    if "tensorboard" in sys.modules or __import__("importlib").util.find_spec("tensorboard"):
        epoch_level.append(cb.TensorBoard("tb"))
        batch_level.append(cb.TensorBoard("tb", update_freq="batch"))
    assert [needs_batch_hooks(c) for c in epoch_level] == [False] * len(epoch_level)
    assert [needs_batch_hooks(c) for c in batch_level] == [True] * len(batch_level)


def test_cli_tensorboard_writes_logs(tmp_path):
    pytest.importorskip("tensorboard")
    from pairzoo.cli import main

    code = main(["train", "siamese_small_cnn", "--epochs", "1", "--set", "train.n_train=100",
                 "--set", "train.n_test=100", "--tensorboard", str(tmp_path / "tb"),
                 "--out", str(tmp_path / "run")])
    assert code == 0 and list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["loop"] == "fast" and os.path.isdir(tmp_path / "run")
