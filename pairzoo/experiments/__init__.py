"""Experiments: repeated runs, grids, the results store, tables and plots.

    from pairzoo.experiments import load_spec, open_store, run_experiment, spec_table
    spec = load_spec("001_table1")                       # or a path to a TOML spec
    store = open_store("results/001/runs.jsonl")
    outcome = run_experiment(spec, store, runs=2, overrides={"train.epochs": 1})
    print(spec_table(spec, outcome["plan"], store).markdown())

Modules: `spec` (TOML specs, checked), `plan` (the runs a spec needs, content-derived run ids,
time estimates), `store` (append-only JSON lines), `runner` (train what is missing),
`selection` (the reports' recipe-selection rules), `rows` (units and failed runs, read one
way), `tables` and `reporting` (pandas tables, ours beside the report's, with 95 % CIs), `plots`
and `forest` (learning curves, forest plots), `effects` and `claims` (effects with CIs and
Holm-adjusted p-values; the reports' claims checked), `analysis` (`pairzoo effects`), `pages`
(one page per report), `progress` (one display per experiment).

Names resolve lazily, as in `pairzoo`: nothing here imports TensorFlow until a run trains.
"""

from __future__ import annotations

import importlib

_API = {
    "ExperimentSpec": "spec", "load_spec": "spec", "shipped_specs": "spec",
    "specs_for_report": "spec", "spec_from_dict": "spec",
    "PlannedRun": "plan", "plan_table": "plan", "plan_search": "plan",
    "ResultsStore": "store", "open_store": "store",
    "run_experiment": "runner", "run_search": "runner", "execute": "runner",
    "plan_frame": "runner",
    "choose": "selection",
    "spec_table": "reporting", "store_tables": "reporting",
    "write_learning_curves": "plots",
    "analyses_for": "analysis", "effects_table": "effects", "check_claims": "claims",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f"pairzoo.experiments.{_API[name]}"), name)
    raise AttributeError(f"module 'pairzoo.experiments' has no attribute {name!r}")
