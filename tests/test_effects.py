"""Effects, confidence intervals and claim verdicts on synthetic stores with known effects;
the row conventions (units, failed runs) the tables read; `pairzoo effects` on every committed
store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pairzoo.analysis import rows
from pairzoo.analysis.claims import FAILS, HOLDS, UNDECIDED, UNTESTED, check_claims
from pairzoo.analysis.effects import (
    CellMeans,
    effects_table,
    holm,
    reference_level,
    spec_from_rows,
)
from pairzoo.analysis.tables import summarise
from pairzoo.cli import main
from pairzoo.errors import ConfigError
from pairzoo.experiments.spec import cell_label, spec_from_dict

REPO = Path(__file__).resolve().parents[1]
MODELS = ["siamese_argmax", "two_channel_baseline"]


def factorial_spec(claims=(), **extra):
    return spec_from_dict({"experiment": {"name": "synthetic", "models": MODELS, "runs": 10},
                           "grid": {"share_weights": [False, True], "aux_weight": [0.0, 1.0]},
                           "claim": list(claims), **extra})


def true_mean(cell: dict) -> float:
    """Known truth: sharing -2 (model 1) and -4 (model 2), aux -8, no interaction."""
    sharing = {"siamese_argmax": -2.0, "two_channel_baseline": -4.0}[cell["model"]]
    return 20.0 + sharing * cell["share_weights"] - 8.0 * cell["aux_weight"]


def synthetic_rows(spec, mean=true_mean, runs=10, seed=0, sd=None) -> pd.DataFrame:
    """Store-like rows: each cell's runs drawn around `mean(cell)`; the second model's runs
    spread twice as much (the robust errors must cope)."""
    rng = np.random.default_rng(seed)
    records = []
    for cell in spec.cells():
        spread = sd or (1.0 if cell["model"] == MODELS[0] else 2.0)
        for r in range(runs):
            records.append({"run_id": f"{cell_label(cell)}-{r}", "experiment": spec.name,
                            "stage": "table", "model": cell["model"], "cell": cell,
                            "cell_label": cell_label(cell), "seed": r,
                            "test_error": mean(cell) + rng.normal(0, spread),
                            "digit_accuracy": 0.95})
    return pd.DataFrame(records)


def row(effects: pd.DataFrame, factor: str, scope: str) -> pd.Series:
    found = effects[(effects["factor"] == factor) & (effects["scope"] == scope)]
    assert len(found) == 1, (factor, scope, effects[["factor", "scope"]])
    return found.iloc[0]


# --- effects ---------------------------------------------------------------------------------


def test_intervals_cover_the_known_effects_per_model_and_pooled():
    spec = factorial_spec()
    effects = effects_table(spec, synthetic_rows(spec))
    truth = {("weight sharing", "siamese_argmax"): -2, ("weight sharing",
                                                         "two_channel_baseline"): -4,
             ("weight sharing", "pooled"): -3, ("auxiliary loss", "siamese_argmax"): -8,
             ("auxiliary loss", "two_channel_baseline"): -8, ("auxiliary loss", "pooled"): -8,
             ("weight sharing × auxiliary loss", "pooled"): 0}
    for (factor, scope), effect in truth.items():
        found = row(effects, factor, scope)
        # each 95 % interval misses 1 time in 20 (the next test checks that rate); within
        # 1.6 half-widths (about 3 standard errors) of the truth is what every one must be
        half = (found["ci high"] - found["ci low"]) / 2
        assert abs(found["effect"] - effect) <= 1.6 * half, (factor, scope, found)
    assert row(effects, "auxiliary loss", "pooled")["p holm"] < 1e-6  # a large effect
    assert row(effects, "weight sharing × auxiliary loss", "pooled")["p holm"] > 0.05  # none
    assert "Holm" in effects.attrs["method"] and "HC3" in effects.attrs["method"]


def test_about_95_percent_of_intervals_cover_the_truth_and_5_percent_of_nulls_reject():
    """The estimator behind every effect (CellMeans: OLS on cell means, HC3) is calibrated:
    with unequal spreads (1 and 3) and 10 runs per cell, 95 % intervals cover a 1.5-point
    effect about 95 % of the time, and a null effect is rejected about 5 % of the time."""
    rng = np.random.default_rng(0)
    labels = ["off", "on"]
    covered = rejected = 0
    trials = 200
    weights = {"on": 1.0, "off": -1.0}
    for _ in range(trials):
        for effect in (1.5, 0.0):
            frame = pd.DataFrame({"cell_label": ["off"] * 10 + ["on"] * 10,
                                  "test_error": np.r_[rng.normal(10, 1, 10),
                                                      rng.normal(10 + effect, 3, 10)]})
            estimate = CellMeans(frame, "test_error", labels).test(weights)
            if effect:
                covered += estimate.low <= effect <= estimate.high
            else:
                rejected += estimate.p < 0.05
    assert 0.90 <= covered / trials <= 0.995
    assert rejected / trials <= 0.09


def test_holm_adjusts_p_values_upward_and_keeps_missing_ones():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.30, float("nan")]
    adjusted = holm(p)
    assert np.allclose(adjusted[:3], multipletests(p[:3], method="holm")[1])
    assert np.isnan(adjusted[3]) and (adjusted[:3] >= np.array(p[:3])).all()
    # statsmodels' values whatever the order, ties, caps at 1 and NaNs among them
    rng = np.random.default_rng(0)
    for size in (1, 2, 5, 12, 40):
        p = rng.choice([*rng.uniform(0, 0.2, size), 0.03, 0.03, 0.9], size)
        p[rng.uniform(size=size) < 0.2] = np.nan
        finite = np.isfinite(p)
        adjusted = holm(p)
        assert np.isnan(adjusted[~finite]).all()
        if finite.any():
            np.testing.assert_allclose(adjusted[finite],
                                       multipletests(p[finite], method="holm")[1], rtol=1e-12)
    assert holm([]).shape == (0,)


def test_three_way_designs_get_every_interaction_and_missing_cells_are_named():
    spec = spec_from_dict({"experiment": {"name": "t2", "models": ["siamese_argmax"]},
                           "grid": {"share_weights": [False, True],
                                    "tower.batchnorm": [False, True],
                                    "dropout": {"no": {}, "yes": {"tower.dropout": 0.25}}}})
    frame = synthetic_rows(spec, lambda c: 8 - 2 * (c["dropout"] == "yes"))
    effects = effects_table(spec, frame)
    assert {"weight sharing × batch norm × dropout", "batch norm × dropout"} <= set(
        effects["factor"])
    dropout = row(effects, "dropout", "siamese_argmax")
    assert dropout["levels"] == "yes − no" and dropout["ci low"] <= -2 <= dropout["ci high"]
    one_cell = frame[frame["cell_label"] != frame["cell_label"].iloc[0]]
    effects = effects_table(spec, one_cell)
    assert effects["effect"].isna().any() and effects["note"].str.contains("fewer than 2").any()


def test_models_that_carry_a_factor_and_stores_without_a_spec():
    spec = factorial_spec(contrast=[{"factor": "towers", "pairs": [MODELS]}])
    effects = effects_table(spec, synthetic_rows(spec))
    towers = row(effects, "towers", f"{MODELS[0]} → {MODELS[1]}")
    # model 2 minus model 1, averaged over the four sharing x aux cells: -1 point
    assert towers["ci low"] <= -1 <= towers["ci high"]
    assert "towers × auxiliary loss" in set(effects["factor"])
    recorded = spec_from_rows("anon", synthetic_rows(spec))
    assert recorded.models == MODELS and [a.name for a in recorded.axes] == [
        "share_weights", "aux_weight"]
    assert reference_level(recorded.axes[0]) is False
    assert len(effects_table(recorded, synthetic_rows(spec))) == 9  # 2 x (2 + 1) + 3 pooled


# --- claims ----------------------------------------------------------------------------------

CLAIMS = [
    {"text": "aux lowers error in every model", "kind": "lower", "cell": {"aux_weight": 1.0},
     "than": {"aux_weight": 0.0}, "per": ["model"]},
    {"text": "sharing raises error", "kind": "higher", "cell": {"share_weights": True},
     "than": {"share_weights": False}},
    {"text": "the first model's sharing effect is within 5 points", "kind": "similar",
     "cell": {"model": MODELS[0], "share_weights": True},
     "than": {"model": MODELS[0], "share_weights": False}, "margin": 5.0},
    {"text": "model 1 with both is best", "kind": "best",
     "cell": {"model": MODELS[0], "share_weights": True, "aux_weight": 1.0}},
    {"text": "aux lowers error 1.2 to 3 times", "kind": "lower", "cell": {"aux_weight": 1.0},
     "than": {"aux_weight": 0.0}, "times": [1.2, 3], "per": ["model", "share_weights"]},
    {"text": "aux cuts 20 points", "kind": "lower", "cell": {"aux_weight": 1.0},
     "than": {"aux_weight": 0.0}, "by": 20},
    {"text": "model 2 spreads more", "kind": "more_variable", "cell": {"model": MODELS[1]},
     "than": {"model": MODELS[0]}},
    {"text": "model 1 with both is below 11 %", "kind": "lower",
     "cell": {"model": MODELS[0], "share_weights": True, "aux_weight": 1.0}, "value": 11.0},
    {"text": "model 1 with both is below 10.1 %", "kind": "lower",
     "cell": {"model": MODELS[0], "share_weights": True, "aux_weight": 1.0}, "value": 10.1},
    {"text": "nobody checked", "kind": "untested", "reason": "no runs"},
]


def test_claims_get_the_verdicts_the_truth_implies():
    spec = factorial_spec(CLAIMS)
    claims, checks = check_claims(spec, synthetic_rows(spec, runs=20))
    verdicts = dict(zip(claims["claim"], claims["verdict"], strict=True))
    assert verdicts == {
        "aux lowers error in every model": HOLDS,  # -8 points in both
        "sharing raises error": FAILS,  # it lowers it by 3
        "the first model's sharing effect is within 5 points": HOLDS,  # -2
        "model 1 with both is best": FAILS,  # model 2 with both is 2 points lower
        "aux lowers error 1.2 to 3 times": HOLDS,  # ratios 1.67 to 2.0
        "aux cuts 20 points": FAILS,  # 8
        "model 2 spreads more": HOLDS,  # sd 2 against 1, 80 runs each
        "model 1 with both is below 11 %": HOLDS,  # it is 10
        "model 1 with both is below 10.1 %": UNDECIDED,  # 10 against 10.1: too close to tell
        "nobody checked": UNTESTED}
    assert (checks["p holm"].dropna() >= checks["p"].dropna()).all()
    assert "Holm" in claims.attrs["method"]
    best = claims.set_index("claim").loc["model 1 with both is best", "numbers"]
    assert "✗" in best and "two_channel_baseline" in best


def test_claim_mistakes_are_config_errors():
    with pytest.raises(ConfigError, match="kind must be one of"):
        factorial_spec([{"text": "x", "kind": "smaller", "cell": {"aux_weight": 1.0}}])
    with pytest.raises(ConfigError, match="not a level"):
        factorial_spec([{"text": "x", "kind": "best", "cell": {"aux_weight": 0.5}}])
    with pytest.raises(ConfigError, match="margin"):
        factorial_spec([{"text": "x", "kind": "similar", "cell": {"aux_weight": 1.0},
                         "than": {"aux_weight": 0.0}}])
    with pytest.raises(ConfigError, match="did you mean"):
        factorial_spec([{"text": "x", "kind": "best", "cell": {"aux_wieght": 1.0}}])


# --- the rows the tables read: units and failed runs ------------------------------------------


def test_old_and_new_units_give_the_same_table():
    spec = factorial_spec()
    old = synthetic_rows(spec)
    new = old.assign(units="percent", digit_accuracy=old["digit_accuracy"] * 100)
    for frame in (old, new):
        table = summarise(frame, ["test_error", "digit_accuracy"])
        assert table["digit_accuracy mean"].round(6).eq(95.0).all()
    assert np.allclose(summarise(old, ["test_error"])["test_error ci low"],
                       summarise(new, ["test_error"])["test_error ci low"])
    with pytest.raises(Exception, match="units"):
        rows.normalise(old.assign(units="fraction"))


def test_diverged_runs_are_counted_and_never_averaged():
    spec = factorial_spec()
    frame = synthetic_rows(spec)
    label = frame["cell_label"].iloc[0]
    failed = frame.index[frame["cell_label"] == label][:2]
    frame["status"] = None
    frame.loc[failed, ["status", "test_error"]] = ["diverged", None]
    table = summarise(frame, ["test_error"])
    first = table.set_index("cell").loc[label]
    assert first["runs"] == 10 and first["diverged"] == 2 and first["test_error count"] == 8
    expected = frame.loc[(frame["cell_label"] == label) & frame["status"].isna(), "test_error"]
    assert first["test_error mean"] == pytest.approx(expected.mean())
    from pairzoo.analysis.tables import display_frame

    shown = display_frame(table, ["test_error"], ["model"])
    assert shown["diverged"].iloc[0] == "2 of 10"
    # a diverged run that still carries a number is not averaged either
    frame.loc[failed, "test_error"] = 1e9
    assert summarise(frame, ["test_error"]).set_index("cell").loc[
        label, "test_error mean"] == pytest.approx(expected.mean())


def test_unconverged_runs_are_shown_both_ways():
    spec = spec_from_dict({"experiment": {"name": "s2", "models": MODELS},
                           "converged": {"metric": "digit_accuracy", "min": 50.0},
                           "report": [{"model": MODELS[0], "test_error": [8.5, 1.65]}]})
    frame = synthetic_rows(spec, lambda c: 10.0)
    bad = frame.index[frame["model"] == MODELS[0]][:2]
    frame.loc[bad, ["digit_accuracy", "test_error"]] = [0.40, 35.0]
    frame.loc[frame["model"] == MODELS[1], "digit_accuracy"] = None  # no digit outputs
    from pairzoo.analysis.tables import with_report

    table = with_report(summarise(frame, ["test_error"], converged=spec.converged), spec,
                        ["test_error"])
    assert list(table["runs used"])[:2] == ["all", "converged: digit accuracy ≥ 50 %"]
    assert table["runs"].tolist()[1] == "8 of 10" and len(table) == 3  # model 2: one row
    converged = frame.loc[frame["model"] == MODELS[0], "test_error"].iloc[2:]
    assert table["test_error mean"].iloc[1] == pytest.approx(converged.mean())
    assert table["test_error report"].iloc[1] == 8.5  # the report's figure on both rows


# --- the command on every committed store ----------------------------------------------------


@pytest.mark.parametrize("target", ["000", "001", "002", "003", "004", "frontier"])
def test_effects_runs_on_every_committed_store(target, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["effects", f"results/{target}/runs.jsonl", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "Holm" in out and "HC3" in out


def test_effects_of_a_report_write_tables_and_a_forest_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["effects", "004", "--out", str(tmp_path)]) == 0
    assert "does not hold" in capsys.readouterr().out
    for name in ("004_table2_effects.csv", "004_table2_effects.tex", "004_table2_claims.csv",
                 "004_table2_forest.png", "004_table2_forest.svg"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert r"\begin{tabular}" in (tmp_path / "004_table2_effects.tex").read_text()


@pytest.mark.parametrize("args, phrase", [
    (["effects", "/no/such/runs.jsonl"], "no results store"),
    (["effects", "009"], "no shipped experiment"),
    (["effects", "001", "--metric", "speed"], "unknown metric"),
])
def test_effects_bad_input_is_one_line(args, phrase, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0]


def test_a_store_without_a_spec_never_averages_two_recipes(tmp_path, pairzoo_cli):
    """One cell trained at two recipes (`--set train.optimizer=sgd` into the same store and
    experiment name): two rows, each saying how it differs, never one mean of both."""
    import json

    def stored(run_id, optimizer, error):
        return {"run_id": run_id, "experiment": "tiny", "stage": "table",
                "model": "siamese_argmax", "cell": {"model": "siamese_argmax"},
                "cell_label": "siamese_argmax", "overrides": {}, "seed": 0,
                "recipe": {"optimizer": optimizer, "epochs": 2}, "config": {},
                "train_data": "embedded", "test_data": "embedded", "units": "percent",
                "test_error": error}

    store = tmp_path / "runs.jsonl"
    store.write_text("".join(json.dumps(stored(*r)) + "\n" for r in [
        ("a", "adam", 2.0), ("b", "adam", 4.0), ("c", "sgd", 10.0), ("d", "sgd", 12.0)]))
    out = pairzoo_cli("results", str(store)).stdout
    assert "3.00 ± 1.41" in out and "11.00 ± 1.41" in out and "7.00" not in out
    assert "optimizer=adam" in out and "optimizer=sgd" in out
    effects = pairzoo_cli("effects", str(store), "--no-plots").stdout
    assert "recipe" in effects and "+8.00" in effects  # sgd against adam, never pooled


def test_a_run_recipe_reads_the_same_from_a_row_and_from_a_frame():
    """pandas turns a column of pairs seeds with a missing value into floats; the recipe a
    row names must not change with it (else 3.0 and 3 would split a cell)."""
    from pairzoo.analysis.stores import split_by_recipe

    base = {"experiment": "tiny", "stage": "table", "model": "siamese_argmax",
            "cell": {"model": "siamese_argmax"}, "cell_label": "siamese_argmax",
            "recipe": {"epochs": 2}, "config": {}, "train_data": "embedded",
            "test_data": "embedded", "folds": None}
    frame = pd.DataFrame([{**base, "run_id": "a", "pairs_seed": 3},
                          {**base, "run_id": "b", "pairs_seed": 3},
                          {**base, "run_id": "c", "pairs_seed": None}])
    assert frame["pairs_seed"].dtype == float
    assert rows.recipe_key(rows.recipe(frame.iloc[0])) == rows.recipe_key(
        rows.recipe(base | {"pairs_seed": 3}))
    split = split_by_recipe(frame)
    assert list(split["cell_label"]) == ["siamese_argmax recipe=pairs_seed=3"] * 2 + [
        "siamese_argmax recipe=pairs_seed=None"]
