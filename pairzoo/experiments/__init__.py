"""Experiments: repeated runs and grids, planned, dispatched and stored.

    from pairzoo.experiments import load_spec, open_store, run_experiment, spec_table
    spec = load_spec("001_table1")                       # or a path to a TOML spec
    store = open_store("results/001/runs.jsonl")
    outcome = run_experiment(spec, store, runs=2, overrides={"train.epochs": 1})
    print(spec_table(spec, outcome["plan"], store).markdown())

Modules: `spec` (TOML specs, checked), `plan` (the runs a spec needs, content-derived run ids,
time estimates), `store` (append-only JSON lines), `runner` (train what is missing),
`selection` (the reports' recipe-selection rules: they decide which grid point a search stage
runs next, so they belong to running), `dispatch` (which worker trains which run), `engines`
and `ray_engine` (where runs execute: the local pool, Ray), `progress` (one display per
experiment). What is done with finished rows (tables, effects,
claims, plots, pages) is `pairzoo.analysis`; the names below still resolve from here.

Names resolve lazily, as in `pairzoo`: nothing here imports TensorFlow until a run trains.
"""

from __future__ import annotations

import importlib

# name -> module; the analysis names live in pairzoo.analysis and still resolve from here.
_API = {
    "ExperimentSpec": "spec", "load_spec": "spec", "shipped_specs": "spec",
    "specs_for_report": "spec", "spec_from_dict": "spec",
    "PlannedRun": "plan", "plan_table": "plan", "plan_search": "plan",
    "ResultsStore": "store", "open_store": "store",
    "run_experiment": "runner", "run_search": "runner", "execute": "runner",
    "plan_frame": "runner",
    "choose": "selection",
    "spec_table": "pairzoo.analysis.reporting", "store_tables": "pairzoo.analysis.reporting",
    "write_learning_curves": "pairzoo.analysis.plots",
    "analyses_for": "pairzoo.analysis.analyses", "effects_table": "pairzoo.analysis.effects",
    "check_claims": "pairzoo.analysis.claims",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(
            _API[name] if "." in _API[name] else f"pairzoo.experiments.{_API[name]}"
        ), name)
    raise AttributeError(f"module 'pairzoo.experiments' has no attribute {name!r}")
