"""The model of time: what a plan costs (trace + steps per architecture, worker processes), the
worker count reproduce picks, and the dry run that prints both."""

from __future__ import annotations

import json
from argparse import Namespace

import pandas as pd
import pytest

from pairzoo.cli import main
from pairzoo.commands import experiment as experiment_command
from pairzoo.experiments import plan as plan_module
from pairzoo.experiments.plan import (
    TimeModel,
    auto_workers,
    cost_key,
    plan_table,
    pool_speedup,
    run_cost_key,
)
from pairzoo.experiments.runner import execute
from pairzoo.experiments.spec import spec_from_dict, specs_for_report
from pairzoo.experiments.store import ResultsStore

TINY = {"train.epochs": 1, "train.n_train": 100, "train.n_test": 100}


def _plan(runs=5, **overrides):
    spec = spec_from_dict({"experiment": {"name": "t", "models": ["siamese_argmax"],
                                          "runs": runs}, "overrides": {**TINY, **overrides}})
    return plan_table(spec)


def _row(run, seconds, pid=1, workers=None, host="h"):
    row = {"model": run.model, "steps": run.steps, "seconds": seconds, "pid": pid,
           "host": host, "config": plan_module.explicit_fields(run.preset.model),
           "recipe": {"batch_size": run.preset.train.batch_size,
                      "n_train": run.preset.train.n_train, "n_test": run.preset.train.n_test,
                      "optimizer": run.preset.train.optimizer,
                      "learning_rate": run.preset.train.learning_rate}}
    return row if workers is None else {**row, "workers": workers}


def test_the_first_run_of_an_architecture_in_a_process_pays_the_trace():
    plan = _plan(runs=5)
    steps = plan[0].steps
    times = TimeModel([_row(plan[0], 2.0 + 0.1 * steps), _row(plan[1], 0.1 * steps),
                       _row(plan[2], 0.1 * steps)], prior={})
    assert times.run_costs(plan[0]) == pytest.approx((2.0, 0.1))
    assert times.seconds(plan[0]) == pytest.approx(2.0 + 0.1 * steps)
    assert times.seconds(plan[0], traced=True) == pytest.approx(0.1 * steps)
    # one process: one trace, every run's steps; two on two cores: a trace each, 1.26x sooner
    assert times.total(plan, 1, cores=2) == pytest.approx(2.0 + 5 * 0.1 * steps)
    assert times.total(plan, 2, cores=2) == pytest.approx((2 * 2.0 + 5 * 0.1 * steps) / 1.26)
    # another process traces again
    times.add(_row(plan[3], 5.0 + 0.1 * steps, pid=2))
    assert times.run_costs(plan[0])[0] == pytest.approx(3.5)


def test_rows_trained_beside_others_count_as_one_process_alone():
    """Two workers on two cores each take 2 / 1.26 as long per run as one process alone."""
    plan = _plan()
    alone = TimeModel([_row(plan[0], 10.0), _row(plan[1], 10.0)], prior={})
    side_by_side = TimeModel([_row(plan[0], 10.0 * 2 / pool_speedup(2), workers=2),
                              _row(plan[1], 10.0 * 2 / pool_speedup(2), workers=2)], prior={})
    assert side_by_side.run_costs(plan[0]) == pytest.approx(alone.run_costs(plan[0]))


def test_cost_keys_ignore_what_does_not_change_the_time():
    base = _plan()[0]
    assert run_cost_key(_plan(**{"train.learning_rate": 0.5})[0]) == run_cost_key(base)
    assert run_cost_key(_plan(**{"train.epochs": 7})[0]) == run_cost_key(base)
    assert run_cost_key(_plan(**{"train.batch_size": 50})[0]) != run_cost_key(base)
    assert run_cost_key(_plan(share_weights=False)[0]) != run_cost_key(base)
    assert cost_key("m", {"a": 1}, {"batch_size": 5, "seed": 1}) == cost_key(
        "m", {"a": 1}, {"batch_size": 5, "seed": 2})


def test_untimed_architectures_fall_back_in_order():
    run, other_batch = _plan()[0], _plan(**{"train.batch_size": 50})[0]
    prior = {run_cost_key(run): {"model": run.model, "step": 0.5, "trace": 3.0}}
    times = TimeModel(prior=prior)
    assert times.run_costs(run) == (3.0, 0.5)  # the shipped measurement
    assert times.run_costs(other_batch) == (3.0, 0.5)  # the same model's other recipe
    times.add(_row(other_batch, 100.0, pid=None))  # timed here: this machine's beats the prior
    assert times.run_costs(other_batch)[1] == pytest.approx(100.0 / other_batch.steps)
    assert times.run_costs(run) == (3.0, 0.5)  # the exact shipped key beats another recipe
    assert TimeModel(prior={}).run_costs(run) == (plan_module.FALLBACK_TRACE_SECONDS,
                                                  plan_module.FALLBACK_STEP_SECONDS)


def test_the_shipped_costs_load_and_cover_the_reports():
    costs = plan_module.load_step_costs()
    assert costs, "pairzoo/experiments/step_costs.json is missing or empty"
    models = {run.model for report in ("000", "001", "002", "003", "004")
              for spec in specs_for_report(report) for run in plan_table(spec, runs=1)}
    assert models <= {cost["model"] for cost in costs.values()}
    assert all(cost["step"] > 0 for cost in costs.values())


def test_stacked_runs_cost_a_trace_per_model_and_their_steps_sped_up(monkeypatch):
    monkeypatch.setattr(plan_module, "STACK_SPEEDUP", {1: 1.0, 2: 1.2, 5: 1.5, 10: 1.6})
    plan = _plan(runs=7)
    steps = plan[0].steps
    times = TimeModel([_row(plan[0], 2.0 + 0.1 * steps), _row(plan[1], 0.1 * steps)], prior={})
    # 7 runs, stacks of at most 5: five models traced, the steps 1.5x sooner
    assert times.total(plan, 1, stack=5) == pytest.approx(5 * 2.0 + 7 * 0.1 * steps / 1.5)
    assert times.total(plan, 1, stack=1) == times.total(plan, 1)
    assert times.total(plan, 2, stack=5) == times.total(plan, 2)  # workers train one at a time
    # a row trained in a stack of 5 took its share: as one run alone, 1.5x that
    stacked = TimeModel([_row(plan[0], 2.0 + 0.1 * steps), {**_row(plan[1], 0.1 * steps / 1.5),
                                                             "stacked": 5}], prior={})
    assert stacked.run_costs(plan[0]) == pytest.approx((2.0, 0.1))
    # distilled runs never stack
    distilled = plan_table(spec_from_dict({"experiment": {"name": "d", "models": [
        "siamese_vgg_distilled"], "runs": 3}, "overrides": TINY}))
    assert not any(run.spec.stackable for run in distilled)
    assert all(run.spec.stackable for run in plan)


@pytest.mark.parametrize("pending, seconds, cores, workers", [
    (100, 3600, 1, 1),   # one core: nothing to share
    (3, 3600, 2, 1),     # too few runs
    (100, 30, 2, 1),     # too little work: a second TensorFlow start costs more
    (100, 3600, 2, 2),
    (100, 3600, 16, 8),
    (5, 3600, 16, 5),    # never more workers than runs
])
def test_auto_workers(pending, seconds, cores, workers):
    assert auto_workers(pending, seconds, cores) == workers


def _frame(to_run, seconds):
    return pd.DataFrame({"to run": [to_run], "seconds": [seconds]})


def test_an_explicit_worker_count_always_wins(monkeypatch):
    monkeypatch.setattr(plan_module.os, "cpu_count", lambda: 2)
    args = Namespace(engine="local", workers=None, stack=1)
    assert "2 worker processes, chosen" in experiment_command._choose_workers(
        args, _frame(100, 3600))
    assert args.workers == 2
    for given in (1, 3):
        args = Namespace(engine="local", workers=given, stack=5)
        assert experiment_command._choose_workers(args, _frame(100, 3600)) is None
        assert args.workers == given
    args = Namespace(engine="ray", workers=None, stack=5)
    assert experiment_command._choose_workers(args, _frame(100, 3600)) is None
    assert args.workers is None  # Ray sizes itself
    args = Namespace(engine="local", workers=None, stack=1)
    assert "this process, chosen" in experiment_command._choose_workers(args, _frame(10, 20))
    assert args.workers == 1


def test_runs_in_this_process_are_said_to_train_stacked(monkeypatch):
    """Worker processes train one run at a time and still win big plans (two of them import and
    trace side by side: benchmarks/results/stacked.md); runs in this process stack."""
    monkeypatch.setattr(plan_module.os, "cpu_count", lambda: 2)
    args = Namespace(engine="local", workers=None, stack=5)
    assert "2 worker processes, chosen" in experiment_command._choose_workers(
        args, _frame(100, 3600))
    args = Namespace(engine="local", workers=None, stack=5)
    assert "this process, up to 5 runs of a cell at a time" in (
        experiment_command._choose_workers(args, _frame(10, 20)))
    args = Namespace(engine="local", workers=None, stack=1)
    assert "this process, chosen" in experiment_command._choose_workers(args, _frame(10, 20))


@pytest.fixture
def shipped_costs(tmp_path, monkeypatch):
    """A step_costs.json of known numbers: every model 0.01 s per step, 1 s to trace."""
    from pairzoo.registry import list_models

    path = tmp_path / "step_costs.json"
    costs = {f"k-{m}": {"model": m, "step": 0.01, "trace": 1.0} for m in list_models()}
    path.write_text(json.dumps({"costs": costs}))
    monkeypatch.setattr(plan_module, "STEP_COSTS", path)
    monkeypatch.setattr(plan_module.os, "cpu_count", lambda: 2)
    monkeypatch.setenv("COLUMNS", "200")
    return costs


def test_the_dry_run_estimates_for_the_workers_it_would_use(shipped_costs, capsys, tmp_path):
    store = str(tmp_path / "empty.jsonl")
    assert main(["reproduce", "000", "--dry-run", "--store", store]) == 0
    chosen = capsys.readouterr().out
    assert "with 2 worker processes" in chosen and "would train in 2 worker processes" in chosen
    assert main(["reproduce", "000", "--dry-run", "--store", store, "--workers", "1"]) == 0
    stacked = " ".join(capsys.readouterr().out.split())  # rich wraps at the console's width
    assert "with one process, runs of a cell up to 5 at a time" in stacked
    assert "would train" not in stacked
    assert main(["reproduce", "000", "--dry-run", "--store", store, "--workers", "1",
                 "--stack", "1"]) == 0
    alone = capsys.readouterr().out
    assert "with one process" in alone and "would train" not in alone
    # the same model of time as benchmarks/bench_reproduction.py: TimeModel.total on the plan
    runs = plan_table(specs_for_report("000")[0])
    times = TimeModel(prior=None)
    one = times.total(runs, 1)
    two = times.total(runs, 2)
    assert f"about {plan_module.format_duration(two)} on this machine with 2" in chosen
    assert f"about {plan_module.format_duration(one)} on this machine with one" in alone
    five = times.total(runs, 1, stack=5)
    assert (f"about {plan_module.format_duration(five)} on this machine with one process, "
            "runs of a cell up to 5") in stacked
    assert one == pytest.approx(4 * 1.0 + sum(run.steps for run in runs) * 0.01)


def test_rows_record_how_many_runs_trained_side_by_side(tmp_path):
    from test_experiments import fake_train

    store = ResultsStore(tmp_path / "s.jsonl")
    execute(_plan(runs=2), store, title="t", train_fn=fake_train([]))
    assert [row["workers"] for row in store.rows()] == [1, 1]
