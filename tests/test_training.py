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


def test_run_folder_round_trip(quick_run, tmp_path):
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


def test_train_and_test_sources_may_differ(t10k):
    result = train("siamese_argmax", seed=0, test_data=f"idx:{t10k}",
                   overrides={"train.epochs": 1, "train.n_train": 100, "train.n_test": 100})
    assert result.data["test_data"].startswith("idx:")
