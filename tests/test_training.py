"""Training: determinism, metric routing, the run folder, both loops, run isolation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pairzoo.data import load_pairs
from pairzoo.errors import DivergedError, PairzooError
from pairzoo.registry import get_preset
from pairzoo.runs import RunSpec, load_model
from pairzoo.training import save_run, train

QUICK = {"train.epochs": 2, "train.n_train": 200, "train.n_test": 200}


@pytest.fixture(scope="module")
def quick_run():
    return train("siamese_fullyconv", seed=1, overrides=QUICK)


def test_same_seed_same_metrics(quick_run):
    again = train("siamese_fullyconv", seed=1, overrides=QUICK)
    assert again.metrics["test_error"] == quick_run.metrics["test_error"]
    pd.testing.assert_frame_equal(again.history, quick_run.history)


def test_metrics_land_on_the_right_heads_in_percent(quick_run):
    """Keras 3.9-3.14 misrouted dict metrics (keras#21259, #22625): the per-epoch validation
    accuracies (fractions, Keras's logs) must equal what evaluation computes (percent)."""
    last = quick_run.history.iloc[-1]
    metrics = quick_run.metrics
    assert 100 * last["val_compare_accuracy"] == pytest.approx(metrics["test_accuracy"],
                                                               abs=1e-4)
    assert metrics["test_error"] == pytest.approx(100 - metrics["test_accuracy"], abs=1e-9)
    digit_mean = (last["val_digit_a_accuracy"] + last["val_digit_b_accuracy"]) / 2
    assert 100 * digit_mean == pytest.approx(metrics["digit_accuracy"], abs=1e-4)
    for key in ("test_error", "test_accuracy", "f1", "auc", "digit_accuracy", "params",
                "train_seconds"):
        assert key in metrics
    # 200 test pairs resolve 0.5 points: no float noise in the figures
    assert metrics["test_error"] * 2 == int(metrics["test_error"] * 2)


def test_run_folder_round_trip_is_compiled_and_continues_with_fit(tmp_path, quick_run):
    run_dir = save_run(quick_run, tmp_path / "run")
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "history.csv", "metrics.json", "model.keras"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_error"] == quick_run.metrics["test_error"]
    assert metrics["units"] == "percent"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["name"] == "siamese_fullyconv" and config["seed"] == 1
    assert RunSpec.from_config(config) == quick_run.spec  # typed round trip
    assert config["run_id"] == quick_run.spec.run_id
    _, test = load_pairs(200, 200, seed=1)
    model = load_model(run_dir)
    np.testing.assert_array_equal(model.predict(test.pairs, verbose=0)["compare"],
                                  quick_run.model.predict(test.pairs, verbose=0)["compare"])
    # compiled, with the optimizer state of the fast loop's 2 epochs of 2 steps
    assert model.optimizer is not None and int(model.optimizer.iterations) == 4
    train_pairs, _ = load_pairs(200, 200, seed=1)
    model.fit(train_pairs.pairs, train_pairs.targets(model.output_names), epochs=1,
              batch_size=100, verbose=0)
    assert int(model.optimizer.iterations) == 6
    with pytest.raises(PairzooError, match="already exists"):
        save_run(quick_run, run_dir)  # never overwrites a finished run
    assert not list(tmp_path.glob(".*partial*"))


def test_default_run_folders_never_collide(tmp_path, monkeypatch, quick_run):
    monkeypatch.chdir(tmp_path)
    first, second = save_run(quick_run), save_run(quick_run)  # the same second, same seed
    assert first != second and first.parent == second.parent
    assert (first / "model.keras").is_file() and (second / "model.keras").is_file()


# dropout and random shifts and rotations: the model draws random numbers while it trains
RANDOM_SMALL_CNN = {**QUICK, "model.tower.dropout": 0.5, "model.augment_shift": 1.0,
                    "model.augment_rotation": 8.0}


def test_a_reused_trainer_equals_a_fresh_one():
    """The traced epoch function is reused across runs; a run must not depend on what ran
    before it in the process, nor on TensorFlow's global seed (a run leaves it alone: setting
    it clears the traced functions)."""
    import tensorflow as tf

    from pairzoo import fastpath

    fastpath._TRAINERS.clear()
    tf.random.set_seed(1)
    fresh = train("siamese_small_cnn", seed=5, overrides=RANDOM_SMALL_CNN, loop="fast")
    train("siamese_small_cnn", seed=6, overrides=RANDOM_SMALL_CNN, loop="fast")  # moves states
    reused = train("siamese_small_cnn", seed=5, overrides=RANDOM_SMALL_CNN, loop="fast")
    assert len(fastpath._TRAINERS) == 1
    fastpath._TRAINERS.clear()
    tf.random.set_seed(2)  # traced again under another global seed
    retraced = train("siamese_small_cnn", seed=5, overrides=RANDOM_SMALL_CNN, loop="fast")
    for other in (reused, retraced):
        assert other.metrics["test_error"] == fresh.metrics["test_error"]
        pd.testing.assert_frame_equal(other.history, fresh.history)
        for a, b in zip(other.model.get_weights(), fresh.model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_run_seeds_what_keras_seeds_but_keeps_tensorflows_traces(monkeypatch):
    """`tf.random.set_seed` (inside `keras.utils.set_random_seed`) clears TensorFlow's caches:
    each run paid 0.8 s to instantiate its traced epoch again. A run seeds the rest as Keras
    does: the same initial weights and augmentation seeds."""
    import keras
    import tensorflow as tf

    from pairzoo.fastpath import seed_keeping_traces
    from pairzoo.registry import create_model

    keras.utils.set_random_seed(3)
    expected = create_model("siamese_vgg_aug").get_weights()
    seed_keeping_traces(3)  # after a build has moved every generator
    got = create_model("siamese_vgg_aug").get_weights()
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)

    def clears_the_traces(seed):
        raise AssertionError("tf.random.set_seed in a fast run: its traces are instantiated anew")

    monkeypatch.setattr(tf.random, "set_seed", clears_the_traces)
    train("siamese_small_cnn", seed=5, overrides=QUICK, loop="fast")
    train("siamese_small_cnn", seed=6, overrides=QUICK, loop="fast")


def test_an_earlier_result_keeps_its_own_model():
    first = train("siamese_small_cnn", seed=1, overrides=QUICK, loop="fast")
    _, test = load_pairs(200, 200, seed=1)
    train("siamese_small_cnn", seed=2, overrides=QUICK, loop="fast")  # re-uses the trainer
    outputs = first.model.predict(test.pairs, verbose=0)
    from pairzoo.evaluation import score

    assert score(outputs, test)["test_error"] == first.metrics["test_error"]


@pytest.mark.slow  # traces five architectures (~30 s)
def test_the_trainer_cache_is_bounded():
    from pairzoo import fastpath

    for head in ("mlp", "argmax", "probabilistic"):
        for share in (True, False):
            train("siamese_small_cnn", seed=0, loop="fast",
                  overrides={**QUICK, "train.epochs": 1, "head": head, "share_weights": share})
    assert len(fastpath._TRAINERS) == fastpath.MAX_TRAINERS


@pytest.mark.slow  # trains 2 x 6 runs (~55 s)
def test_fast_loop_matches_fit_in_distribution():
    """Same model, recipe and seeds: mean test error within noise of model.fit's."""
    recipe = {"train.epochs": 6, "train.n_train": 400, "train.n_test": 400}
    errors = {loop: [train("siamese_small_cnn", seed=s, overrides=recipe,
                           loop=loop).metrics["test_error"] for s in range(4)]
              for loop in ("fast", "fit")}
    fast, fit = np.array(errors["fast"]), np.array(errors["fit"])
    noise = 3 * np.sqrt((fast.var(ddof=1) + fit.var(ddof=1)) / 4) + 2.0
    assert abs(fast.mean() - fit.mean()) < noise, errors
    assert set(train("siamese_small_cnn", seed=0, overrides=recipe, loop="fit")
               .history.columns) >= {"loss", "compare_accuracy", "val_compare_accuracy"}


def test_unknown_loop_is_a_clear_error():
    with pytest.raises(PairzooError, match="unknown training loop"):
        train("siamese_small_cnn", loop="turbo")


def test_train_and_test_sources_may_differ(t10k):
    result = train("siamese_argmax", seed=0, test_data=f"idx:{t10k}",
                   overrides={"train.epochs": 1, "train.n_train": 100, "train.n_test": 100})
    assert result.data["test_data"].startswith("idx:")


def test_skipping_the_per_epoch_evaluation_keeps_the_final_metrics():
    quiet = {**QUICK, "train.eval_each_epoch": False}
    for loop in ("fast", "fit"):
        result = train("siamese_small_cnn", seed=3, overrides=quiet, loop=loop)
        assert not any(c.startswith("val_") for c in result.history.columns), loop
        assert 0 < result.metrics["test_error"] < 60
    # the option is part of the run: it is recorded, and its id differs
    spec = RunSpec(get_preset("siamese_small_cnn", **quiet))
    assert spec.to_config()["train"]["eval_each_epoch"] is False
    assert spec.run_id != RunSpec(get_preset("siamese_small_cnn", **QUICK)).run_id


@pytest.mark.parametrize("loop", ["fast", "fit"])
def test_a_diverging_run_stops_and_keeps_nothing(loop):
    with pytest.raises(DivergedError, match="diverged in epoch 1.*Lower the learning rate"):
        train("siamese_argmax", seed=0, loop=loop,
              overrides={**QUICK, "train.learning_rate": 1e6})


@pytest.mark.slow  # three fresh processes (~40 s)
def test_a_seed_fixes_a_run_whatever_ran_before(tmp_path):
    """Run isolation (in a fresh process, as a user's script): building other models and
    training another run first must not change a seed's result; TensorFlow's thread pools are
    fixed when it starts (pairzoo._startup), not by whichever model runs first."""
    import subprocess
    import sys

    script = """
import sys, pairzoo
quick = {"train.epochs": 2, "train.n_train": 200, "train.n_test": 200}
if sys.argv[1] == "busy":
    pairzoo.create_model("two_channel_baseline")
    pairzoo.create_model("siamese_resnet", share_weights=False)
    pairzoo.train("two_channel_baseline", seed=4, overrides=quick)
r = pairzoo.train("siamese_fullyconv", seed=0, overrides=quick)
print(repr(r.history["loss"].tolist()), r.metrics["test_error"])
"""
    outputs = [subprocess.run([sys.executable, "-c", script, mode], capture_output=True,
                              text=True, cwd=tmp_path, timeout=300).stdout.strip()
               for mode in ("alone", "busy")]
    assert outputs[0] and outputs[0] == outputs[1]


def test_training_mode_evaluation_is_report_001s_protocol_and_leaves_the_model_alone():
    """train.eval_protocol = "training_mode": each test batch normalised by its own batch
    statistics (the authors never called model.eval()); the model's variables are untouched
    and the run also records its inference-mode error."""
    import keras

    from pairzoo.evaluation import evaluate, predict, predict_in_training_mode
    from pairzoo.registry import create_model

    keras.utils.set_random_seed(0)
    model = create_model("siamese_small_cnn")
    _, test = load_pairs(200, 200, seed=0)
    before = [v.numpy().copy() for v in model.variables]
    batch_stats = predict_in_training_mode(model, test, batch_size=100)
    for variable, value in zip(model.variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)  # moving statistics kept
    moving = predict(model, test)
    assert np.abs(batch_stats["digit_a"] - moving["digit_a"]).max() > 1e-3
    metrics = evaluate(model, test, protocol="training_mode", batch_size=100)
    assert metrics["inference_test_error"] == evaluate(model, test)["test_error"]
    result = train("siamese_small_cnn", seed=0, overrides={
        **QUICK, "train.epochs": 1, "train.eval_protocol": "training_mode"})
    assert "inference_test_error" in result.metrics
