"""Training: determinism, metric routing, the run folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pairzoo.data import load_pairs
from pairzoo.errors import PairzooError
from pairzoo.runs import load_model
from pairzoo.training import save_run, train

QUICK = {"train.epochs": 2, "train.n_train": 200, "train.n_test": 200}


@pytest.fixture(scope="module")
def quick_run():
    return train("siamese_fullyconv", seed=1, overrides=QUICK)


def test_same_seed_same_metrics(quick_run):
    again = train("siamese_fullyconv", seed=1, overrides=QUICK)
    assert again.metrics["test_error"] == quick_run.metrics["test_error"]
    pd.testing.assert_frame_equal(again.history, quick_run.history)


def test_metrics_land_on_the_right_heads(quick_run):
    """Keras 3.9-3.14 misrouted dict metrics (keras#21259, #22625): the per-epoch validation
    accuracies must equal what evaluation computes on the same test pairs."""
    last = quick_run.history.iloc[-1]
    metrics = quick_run.metrics
    assert last["val_compare_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    digit_mean = (last["val_digit_a_accuracy"] + last["val_digit_b_accuracy"]) / 2
    assert digit_mean == pytest.approx(metrics["digit_accuracy"], abs=1e-6)
    for key in ("test_error", "test_accuracy", "f1", "auc", "digit_accuracy", "params",
                "train_seconds"):
        assert key in metrics


def test_run_folder_round_trip(tmp_path):
    quick_run = train("siamese_fullyconv", seed=1, overrides=QUICK)
    run_dir = save_run(quick_run, tmp_path / "run")
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "history.csv", "metrics.json", "model.keras"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_error"] == quick_run.metrics["test_error"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["name"] == "siamese_fullyconv" and config["seed"] == 1
    _, test = load_pairs(200, 200, seed=1)
    model = load_model(run_dir)
    np.testing.assert_array_equal(model.predict(test.pairs, verbose=0)["compare"],
                                  quick_run.model.predict(test.pairs, verbose=0)["compare"])
    with pytest.raises(PairzooError, match="already exists"):
        save_run(quick_run, run_dir)  # never overwrites a finished run
    assert not list(tmp_path.glob(".*partial*"))


def test_a_reused_trainer_equals_a_fresh_one():
    """The traced epoch function is reused across runs; a run must not depend on what ran
    before it in the process."""
    from pairzoo import fastpath

    fastpath._TRAINERS.clear()
    fresh = train("siamese_small_cnn", seed=5, overrides=QUICK, engine="fast")
    train("siamese_small_cnn", seed=6, overrides=QUICK, engine="fast")  # moves every state
    reused = train("siamese_small_cnn", seed=5, overrides=QUICK, engine="fast")
    assert len(fastpath._TRAINERS) == 1
    assert reused.metrics["test_error"] == fresh.metrics["test_error"]
    pd.testing.assert_frame_equal(reused.history, fresh.history)


def test_a_reused_model_is_refused_not_silently_wrong():
    first = train("siamese_small_cnn", seed=1, overrides=QUICK, engine="fast")
    assert first.model is not None  # still its own
    train("siamese_small_cnn", seed=2, overrides=QUICK, engine="fast")
    with pytest.raises(PairzooError, match="re-used by a later run"):
        first.model  # noqa: B018


def test_fast_path_matches_fit_in_distribution():
    """Same model, recipe and seeds: mean test error within noise of model.fit's."""
    recipe = {"train.epochs": 6, "train.n_train": 400, "train.n_test": 400}
    errors = {engine: [train("siamese_small_cnn", seed=s, overrides=recipe,
                             engine=engine).metrics["test_error"] for s in range(4)]
              for engine in ("fast", "fit")}
    fast, fit = np.array(errors["fast"]), np.array(errors["fit"])
    noise = 3 * np.sqrt((fast.var(ddof=1) + fit.var(ddof=1)) / 4) + 2.0
    assert abs(fast.mean() - fit.mean()) < noise, errors
    assert set(train("siamese_small_cnn", seed=0, overrides=recipe, engine="fit")
               .history.columns) >= {"loss", "compare_accuracy", "val_compare_accuracy"}


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(PairzooError, match="unknown engine"):
        train("siamese_small_cnn", engine="turbo")


def test_train_and_test_sources_may_differ(t10k):
    result = train("siamese_argmax", seed=0, test_data=f"idx:{t10k}",
                   overrides={"train.epochs": 1, "train.n_train": 100, "train.n_test": 100})
    assert result.data["test_data"].startswith("idx:")
