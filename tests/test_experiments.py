"""Experiments: specs, run ids, the store (resume, concurrent writers), selection rules,
tables, curves, and the experiment / reproduce / results commands through the real CLI.

Most tests drive the machinery with a fake `train_fn` (milliseconds); the CLI tests train for
real on tiny grids (two models, two seeds, one epoch, 100 pairs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pairzoo.analysis.plots import write_learning_curves
from pairzoo.analysis.tables import plan_summary
from pairzoo.errors import ConfigError
from pairzoo.experiments import plan as plan_module
from pairzoo.experiments.plan import plan_search, plan_table
from pairzoo.experiments.runner import plan_frame, run_experiment
from pairzoo.experiments.selection import choose, chosen_labels
from pairzoo.experiments.spec import load_spec, shipped_specs, spec_from_dict, specs_for_report
from pairzoo.experiments.store import ResultsStore
from pairzoo.runs import split_folds

TINY = {"train.epochs": 1, "train.n_train": 100, "train.n_test": 100}


def fake_train(calls: list, error=None):
    """A stand-in for pairzoo.training.train: test error falls with the learning rate's
    distance from 0.01, so selection has a known right answer; `error(n)` may raise."""

    def train(run, *, device, callbacks):
        preset, seed = run.preset, run.seed
        # the pairs a run trains on when they are not its own (cross-validation folds)
        pairs = run.pairs() if run.fold is not None or run.pairs_seed is not None else None
        calls.append({"preset": preset, "seed": seed, "pairs": pairs})
        if error:
            error(len(calls))
        lr = preset.train.learning_rate
        accuracy = 0.9 - abs(np.log10(lr) + 2) / 10 + seed / 1000
        history = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5 + abs(np.log10(lr) + 2)],
                                "compare_accuracy": [0.6, accuracy],
                                "val_loss": [1.1, 0.7], "val_compare_accuracy": [0.55, accuracy]})
        metrics = {"test_error": round(100 * (1 - accuracy), 4), "test_accuracy": accuracy,
                   "f1": accuracy, "auc": accuracy, "params": 10, "train_seconds": 0.01}
        return SimpleNamespace(metrics=metrics, history=history, data={})

    return train


def small_spec(**search) -> object:
    data = {"experiment": {"name": "small", "models": ["siamese_argmax", "two_channel_baseline"],
                           "runs": 2},
            "overrides": TINY,
            "grid": {"train.learning_rate": [0.001, 0.01]}}
    if search:
        data.pop("grid")
        data["search"] = search
    return spec_from_dict(data)


# --- specs -----------------------------------------------------------------------------------


SHIPPED_CELLS = {"000_table2": 4, "001_table1": 16, "001_table1_training_mode": 4,
                 "001_table2": 8, "002_table1": 9, "002_table1_batch100": 9, "003_table1": 3,
                 "004_table1": 4, "004_table2": 4}
# pairzoo's own experiments (the accuracy frontier): no report, so figures are optional
OWN_CELLS = {"frontier_best": 1, "frontier_best_t10k": 1, "frontier_ablation": 6,
             "frontier_distilled": 2, "frontier_distilled_ablation": 2,
             "frontier_student_probe": 5, "frontier_three_teachers": 2}


@pytest.mark.parametrize("name, cells", sorted(SHIPPED_CELLS.items()))
def test_shipped_specs_plan_and_every_cell_has_the_reports_figure(name, cells):
    spec = load_spec(name)
    assert spec.runs >= 10
    assert len(spec.cells()) == cells
    for cell in spec.cells():
        assert spec.report_for(cell) is not None, f"{name}: no report figure for {cell}"
    for report_cell in spec.report_cells:  # each figure names exactly one cell
        assert sum(all(c.get(k) == v for k, v in report_cell.where.items())
                   for c in spec.cells()) == 1, report_cell
    assert len(plan_table(spec)) == cells * spec.runs  # every cell resolves to a valid preset
    if spec.search:
        assert plan_search(spec)


@pytest.mark.parametrize("name, cells", sorted(OWN_CELLS.items()))
def test_own_specs_plan(name, cells):
    spec = load_spec(name)
    assert not spec.report
    assert len(spec.cells()) == cells
    assert len(plan_table(spec)) == cells * spec.runs  # every cell resolves to a valid preset


def test_every_shipped_spec_is_tested():
    assert set(shipped_specs()) == set(SHIPPED_CELLS) | set(OWN_CELLS)


def test_report_lookup_by_number_file_name_alias_or_spec():
    report_001 = ["001_table1", "001_table1_training_mode", "001_table2"]
    assert [s.name for s in specs_for_report("001")] == report_001
    assert [s.name for s in specs_for_report("1")] == report_001
    assert [s.name for s in specs_for_report("004_95cf85b2e47a957e.txt")] == [
        "004_table1", "004_table2"]
    assert [s.name for s in specs_for_report("borba")] == ["003_table1"]
    assert [s.name for s in specs_for_report("001_table2")] == ["001_table2"]
    with pytest.raises(ConfigError, match="no shipped experiment"):
        specs_for_report("009")


def test_report_001_quirks_and_shared_runs():
    table1, table2 = load_spec("001_table1"), load_spec("001_table2")
    plan1 = plan_table(table1)
    epochs = {(r.cell["model"], r.cell["aux_weight"]): r.preset.train.epochs for r in plan1}
    assert epochs[("siamese_lenet5", 0.0)] == 25 and epochs[("siamese_lenet5", 1.0)] == 30
    figure = table1.report_for({"model": "siamese_fullyconv", "share_weights": True,
                                "aux_weight": 1.0})
    assert figure.figures["test_error"] == (3.629, 0.748)
    # Table II's batch-norm-on, dropout-off cells are Table I's LeNet5 aux-on runs
    lenet_aux = {r.run_id for r in plan1
                 if r.cell["model"] == "siamese_lenet5" and r.cell["aux_weight"] == 1.0}
    plan2 = plan_table(table2)
    shared = {r.run_id for r in plan2 if r.cell["tower.batchnorm"] and r.cell["dropout"] == "no"}
    assert len(shared) == 20 and shared == lenet_aux
    dropout = next(r for r in plan2 if r.cell["dropout"] == "yes")
    assert dropout.preset.model.tower.dropout == 0.25 and dropout.preset.model.head_dropout == 0.25


@pytest.mark.parametrize("data, message", [
    ({"experiment": {"models": ["siamese_argmax"]}, "gird": {}}, "did you mean grid"),
    ({"experiment": {"models": ["siamese_argmax"], "rnus": 3}}, "did you mean runs"),
    ({"experiment": {"models": []}}, "models is empty"),
    ({"experiment": {"models": ["siamese_argmax"]}, "grid": {"share_weights": [True]},
      "report": [{"share_weights": "maybe", "test_error": 1.0}]}, "not a level"),
    ({"experiment": {"models": ["siamese_argmax"]}, "report": [{"model": "siamese_argmax"}]},
     "gives no figure"),
    ({"experiment": {"models": ["siamese_argmax"]}, "search": {"rule": "vibes", "grid": {}}},
     "search.rule must be one of"),
])
def test_spec_mistakes_are_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        spec_from_dict(data)


def test_invalid_cell_fails_before_any_training():
    spec = spec_from_dict({"experiment": {"models": ["siamese_argmax"]},
                           "grid": {"tower.dropotu": [0.1]}})
    with pytest.raises(ConfigError, match="tower.dropotu; did you mean dropout"):
        plan_table(spec)


def test_run_ids_hash_content_not_the_experiment_name():
    spec = small_spec()
    renamed = spec_from_dict({"experiment": {"name": "other", "models": spec.models, "runs": 2},
                              "overrides": TINY,
                              "grid": {"train.learning_rate": [0.001, 0.01]}})
    ids = [r.run_id for r in plan_table(spec)]
    assert ids == [r.run_id for r in plan_table(renamed)]
    assert len(set(ids)) == len(ids) == 8
    more = [r.run_id for r in plan_table(spec, overrides={"train.epochs": 2})]
    assert not set(more) & set(ids)  # a changed recipe is a different run


# specs whose committed store holds a part of the plan on purpose (fewer runs per cell)
PARTIAL_STORES = {"frontier_ablation"}


@pytest.mark.parametrize("name", sorted(set(shipped_specs()) - PARTIAL_STORES))
def test_every_committed_run_keeps_its_id(name):
    """results/ holds every run of every shipped table: a change that moved run ids (a
    renamed field, a new default) would orphan them; the tables would silently retrain."""
    import json

    results = Path(__file__).resolve().parents[1] / "results"
    stored = {json.loads(line)["run_id"] for store in results.glob("*/runs.jsonl")
              for line in store.read_text().splitlines() if line.strip()}
    missing = [run.label for run in plan_table(load_spec(name)) if run.run_id not in stored]
    assert not missing, f"{len(missing)} planned runs of {name} are not in results/"


def test_run_ids_ignore_fields_at_their_defaults():
    """So adding a config option (at a default that keeps behaviour) keeps stored runs valid."""
    from pairzoo.registry import get_preset

    fields = plan_module.explicit_fields(get_preset("siamese_lenet5").model)
    assert fields["tower"]["kind"] == "cnn" and fields["tower"]["dense_units"] == [120, 84]
    assert "head_dropout" not in fields and "expected_params" not in fields
    assert "share_weights" not in fields  # True is the default
    assert plan_module.explicit_fields(
        get_preset("siamese_lenet5", share_weights=False).model)["share_weights"] is False


# --- the store -------------------------------------------------------------------------------


# the fields every store row has (pairzoo.experiments.store.row_problem)
ROW = {"experiment": "e", "stage": "table", "model": "m", "cell": {"model": "m"},
       "cell_label": "model=m"}


def test_store_round_trip_survives_a_torn_line(tmp_path):
    store = ResultsStore(tmp_path / "store.jsonl")
    store.append({**ROW, "run_id": "a", "test_error": float("nan"), "history": {"loss": [1.0]}})
    with open(store.path, "ab") as f:
        f.write(b'{"run_id": "torn", "test_')  # a writer killed mid-line
    store.append({**ROW, "run_id": "b", "test_error": 3.5})
    store.append({**ROW, "run_id": "a", "test_error": 9.9})  # a duplicate from a racing process
    fresh = ResultsStore(store.path)
    rows = fresh.rows()
    assert [r["run_id"] for r in rows] == ["a", "b"]
    assert rows[0]["test_error"] is None  # NaN is stored as valid JSON
    assert fresh.bad_lines == 1
    for line in store.path.read_text().splitlines()[2:]:
        json.loads(line)  # every line after the torn one is whole


WRITER = f"""
import sys
from pairzoo.experiments.store import ResultsStore
store = ResultsStore(sys.argv[1])
for i in range(int(sys.argv[3])):
    store.append({{**{ROW!r}, "run_id": f"{{sys.argv[2]}}-{{i}}",
                  "history": {{"loss": [0.123456] * 3000}}}})
"""


def test_concurrent_writers_leave_every_line_valid_json(tmp_path):
    """Rows of ~30 kB (far over the pipe-atomic 4 kB) from two processes at once."""
    path = tmp_path / "store.jsonl"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "150"])
               for name in ("one", "two")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    lines = path.read_text().splitlines()
    assert len(lines) == 300
    ids = [json.loads(line)["run_id"] for line in lines]
    assert {i.split("-")[0] for i in ids} == {"one", "two"}
    assert ResultsStore(path).bad_lines == 0


# --- running, resuming, selecting ------------------------------------------------------------


def test_resume_after_a_kill_trains_only_what_is_missing(tmp_path):
    store = ResultsStore(tmp_path / "store.jsonl")
    spec, calls = small_spec(), []

    def killed_on_the_third(n):
        if n == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, store, train_fn=fake_train(calls, killed_on_the_third))
    assert len(ResultsStore(store.path).rows()) == 2  # the run in progress is lost, no more
    calls.clear()
    outcome = run_experiment(spec, ResultsStore(store.path), train_fn=fake_train(calls))
    assert len(calls) == 6  # 8 planned, 2 done
    calls.clear()
    run_experiment(spec, ResultsStore(store.path), train_fn=fake_train(calls))
    assert calls == []
    rows = ResultsStore(store.path).rows()
    assert sorted(r["run_id"] for r in rows) == sorted(r.run_id for r in outcome["plan"])
    assert {"seconds", "versions", "history", "test_error", "cell", "recipe"} <= set(rows[0])
    assert rows[0]["recipe"]["epochs"] == 1 and rows[0]["config"]["head"] == "argmax"


@pytest.mark.parametrize("rule", ["best_accuracy", "lowest_train_loss", "cross_validation"])
def test_search_chooses_per_model_and_the_table_uses_it(tmp_path, rule):
    spec = small_spec(rule=rule, runs=1, folds=4,
                      grid={"train.learning_rate": [0.1, 0.01, 0.001]})
    calls = []
    outcome = run_experiment(spec, ResultsStore(tmp_path / "s.jsonl"), search=True,
                             train_fn=fake_train(calls))
    assert chosen_labels(outcome["search"]) == {
        "siamese_argmax": "siamese_argmax train.learning_rate=0.01",
        "two_channel_baseline": "two_channel_baseline train.learning_rate=0.01"}
    assert outcome["chosen"]["siamese_argmax"] == {"train.learning_rate": 0.01}
    assert {r.preset.train.learning_rate for r in outcome["plan"]} == {0.01}
    assert all(r.preset.train.epochs == 1 for r in outcome["plan"])  # no search-only leak
    searched = [c for c in calls if c["pairs"] is not None]
    if rule == "cross_validation":  # 4 folds of the 100 training pairs; test pairs unused
        assert len(searched) == 2 * 3 * 4
        assert {(len(c["pairs"][0]), len(c["pairs"][1])) for c in searched} == {(75, 25)}
    else:
        assert searched == []


def test_selection_rules_on_known_scores():
    rows = pd.DataFrame({
        "model": ["m"] * 6, "label": ["a", "a", "b", "b", "c", "c"],
        "test_accuracy": [0.8, 0.9, 0.85, 0.85, 0.7, np.nan],
        "history": [{"loss": [2, 0.3]}, {"loss": [2, 0.5]}, {"loss": [2, 0.2]},
                    {"loss": [2, 0.2]}, {"loss": [1, None]}, {"loss": [1, 0.1]}]})
    best = choose(rows, "best_accuracy")
    assert chosen_labels(best) == {"m": "a"}  # tie with b at 0.85: the first in grid order
    assert list(best["count"]) == [2, 2, 2]
    # c has the lowest loss in one run but diverged (NaN) in the other: the worst, not best
    assert chosen_labels(choose(rows, "lowest_train_loss")) == {"m": "b"}


def test_folds_partition_the_training_pairs(tiny_pairs):
    train_pairs, _ = tiny_pairs
    held = [split_folds(train_pairs, 5, fold)[1] for fold in range(5)]
    assert sum(len(h) for h in held) == len(train_pairs)
    np.testing.assert_array_equal(np.concatenate([h.digits for h in held]), train_pairs.digits)
    fit, val = split_folds(train_pairs, 5, 2)
    assert len(fit) + len(val) == len(train_pairs)


# --- tables and curves -----------------------------------------------------------------------


def test_tables_have_mean_std_count_and_flag_cells_outside_the_report(tmp_path):
    spec = spec_from_dict({
        "experiment": {"name": "t", "models": ["siamese_argmax"], "runs": 3},
        "overrides": TINY, "grid": {"train.learning_rate": [0.001, 0.01]},
        "report": [{"train.learning_rate": 0.001, "test_error": [20.0, 1.0]},
                   {"train.learning_rate": 0.01, "test_error": [10.5, 1.0]}]})
    store = ResultsStore(tmp_path / "s.jsonl")
    outcome = run_experiment(spec, store, train_fn=fake_train([]))
    summary = plan_summary(spec, outcome["plan"], plan_frame(outcome["plan"], store))
    assert list(summary["test_error count"]) == [3, 3]
    errors = 100 * (1 - (0.9 - 0.1 + np.array([0, 1, 2]) / 1000))  # lr 0.001, seeds 0..2
    assert summary["test_error mean"][0] == pytest.approx(errors.mean())
    assert summary["test_error std"][0] == pytest.approx(errors.std(ddof=1))
    # ours 19.9 vs 20 +- 1: within; ours 9.9 vs 10.5 +- 1: within; then tighten the report
    assert list(summary["test_error outside"]) == [False, False]
    spec.report_cells[1].figures["test_error"] = (12.5, 1.0)
    summary = plan_summary(spec, outcome["plan"], plan_frame(outcome["plan"], store))
    assert list(summary["test_error outside"]) == [False, True]
    assert summary["test_error z"][1] == pytest.approx(summary["test_error mean"][1] - 12.5)


def test_a_table_before_any_run_shows_the_reports_figures():
    spec = load_spec("001_table2")
    summary = plan_summary(spec, plan_table(spec), pd.DataFrame())
    assert list(summary["runs"]) == [0] * 8 and summary["test_error mean"].isna().all()
    assert summary["test_error report"].tolist()[:2] == [9.619, 10.12]


def test_learning_curves_are_written_from_store_rows_alone(tmp_path):
    store = ResultsStore(tmp_path / "s.jsonl")
    outcome = run_experiment(small_spec(), store, train_fn=fake_train([]))
    files = write_learning_curves(plan_frame(outcome["plan"], store), tmp_path / "curves", "t")
    assert len(files) == 2 * (1 + 4)  # overview + one per cell, each as PNG and SVG
    assert all(f.read_bytes()[:4] == b"\x89PNG" for f in files if f.suffix == ".png")
    assert all(b"<svg" in f.read_bytes()[:1000] for f in files if f.suffix == ".svg")


def test_time_estimates_learn_from_finished_runs(tmp_path):
    run = plan_table(small_spec())[0]
    times = plan_module.TimeModel(prior={})
    guess = times.seconds(run)
    assert guess == pytest.approx(plan_module.FALLBACK_TRACE_SECONDS
                                  + run.steps * plan_module.FALLBACK_STEP_SECONDS)
    times.add({"model": run.model, "steps": run.steps, "seconds": 10 * run.steps})
    assert times.seconds(run, traced=True) == pytest.approx(10 * run.steps)


# --- the commands, through the real entry point ----------------------------------------------


def test_experiment_resume_and_results_through_the_cli(tmp_path, pairzoo_cli):
    store, out = tmp_path / "store.jsonl", tmp_path / "out"
    args = ["experiment", "--model", "siamese_argmax", "--model", "two_channel_baseline",
            "--runs", "2", "--name", "tiny", "--store", str(store), "--out", str(out),
            *[f"--set={k}={v}" for k, v in TINY.items()]]
    first = pairzoo_cli(*args)
    assert "4 runs to do, 0 already in the store" in first.stderr
    assert "[4/4]" in first.stderr  # plain progress lines when not a terminal
    lines = store.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["experiment"] == "tiny" for line in lines)
    table = pd.read_csv(out / "tiny.csv")
    assert {"test_error mean", "test_error std", "test_error count"} <= set(table.columns)
    assert list(table["runs"]) == [2, 2]
    assert (out / "curves" / "tiny" / "overview.png").is_file()
    again = pairzoo_cli(*args)
    assert "0 runs to do, 4 already in the store" in again.stderr
    assert len(store.read_text().splitlines()) == 4
    results = pairzoo_cli("results", str(store), "--out", str(tmp_path / "tables"))
    assert "siamese_argmax" in results.stdout and "two_channel_baseline" in results.stdout
    assert (tmp_path / "tables" / "tiny.md").read_text().startswith("## tiny")


@pytest.mark.slow  # a whole report's plan (~35 s); resume and tables through the CLI stay
def test_reproduce_a_report_on_a_tiny_override(tmp_path, pairzoo_cli):
    store, out = tmp_path / "store.jsonl", tmp_path / "out"
    args = ["reproduce", "004_table2", "--runs", "1", "--store", str(store), "--out", str(out),
            *[f"--set={k}={v}" for k, v in TINY.items()]]
    plan = pairzoo_cli(*args, "--dry-run").stdout
    assert "004_table2" in plan and "4 runs to train" in plan
    result = pairzoo_cli(*args, "--no-plots")
    assert "Table 2" in result.stdout and "9.30 ± 1.62" in result.stdout  # theirs beside ours
    table = pd.read_csv(out / "004_table2.csv")
    assert list(table["test_error report"]) == [9.30, 16.10, 11.58, 20.59]
    assert list(table["runs"]) == [1, 1, 1, 1]
    assert "within 2σ" in (out / "004_table2.md").read_text()
    tables_only = pairzoo_cli(*args, "--tables-only", "--no-plots")
    assert "runs to do" not in tables_only.stderr and "9.30 ± 1.62" in tables_only.stdout


@pytest.mark.parametrize("args, phrase", [
    (["experiment"], "name a SPEC"),
    (["experiment", "001_tabel1"], "did you mean 001_table1"),
    (["experiment", "--model", "siamese_argmax", "--grid", "share_weights"], "KEY=V1,V2"),
    (["reproduce", "009"], "no shipped experiment"),
    (["reproduce", "002", "--search"], "states its recipes"),
    (["reproduce", "001", "--only", "model=nope", "--dry-run"], "no cell matches"),
    (["results", "/no/such/store.jsonl"], "no results store"),
])
def test_bad_input_is_one_line(args, phrase, pairzoo_cli):
    result = pairzoo_cli(*args, check_ok=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], result.stderr


def test_specs_ship_with_the_package():
    folder = Path(__file__).resolve().parents[1] / "zoo_configs" / "experiments"
    assert {p.stem for p in folder.glob("*.toml")} == set(shipped_specs())


def test_a_diverged_run_is_stored_as_a_failed_row_and_not_retrained(tmp_path):
    """Reliability, class 1: a run whose loss became non-finite is a row with its status and
    no metric (tables count it, never average it); resuming does not train it again."""
    from pairzoo.errors import DivergedError

    calls = []

    def diverges_on_seed_1(run, *, device, callbacks):
        calls.append(run.seed)
        if run.seed == 1:
            raise DivergedError("siamese_argmax (seed 1) diverged in epoch 1")
        return fake_train([])(run, device=device, callbacks=callbacks)

    spec = spec_from_dict({"experiment": {"name": "d", "models": ["siamese_argmax"],
                                          "runs": 3}, "overrides": TINY})
    store = ResultsStore(tmp_path / "s.jsonl")
    run_experiment(spec, store, train_fn=diverges_on_seed_1)
    rows = {row["seed"]: row for row in ResultsStore(store.path).rows()}
    assert rows[1]["status"] == "diverged" and rows[1]["test_error"] is None
    assert "diverged in epoch 1" in rows[1]["error"]
    assert rows[0]["status"] == rows[2]["status"] == "ok" and rows[0]["units"] == "percent"
    run_experiment(spec, ResultsStore(store.path), train_fn=diverges_on_seed_1)
    assert calls == [0, 1, 2]  # nothing retrained on resume


def test_selection_reads_old_and_new_rows_alike():
    """An old row's accuracy is a fraction, a new row's a percentage: best_accuracy must not
    prefer the new convention's bigger numbers."""
    rows = pd.DataFrame({
        "model": ["m", "m"], "label": ["m lr=a", "m lr=b"], "history": [{}, {}],
        "test_accuracy": [0.97, 95.0], "units": [None, "percent"]})
    table = choose(rows, "best_accuracy")
    assert chosen_labels(table) == {"m": "m lr=a"}  # 97 % beats 95 %
