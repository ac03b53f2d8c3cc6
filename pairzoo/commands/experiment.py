"""`pairzoo experiment`, `pairzoo reproduce` and `pairzoo results`.

The logic lives in pairzoo.experiments; this module parses, calls it and prints.
"""

from __future__ import annotations

from pathlib import Path

from pairzoo.commands.common import (
    FORMAT_HELP,
    FORMATS,
    console,
    positive_int,
    print_frames,
    seed_int,
    store_path,
    table_width,
)
from pairzoo.data.sources import SOURCE_HELP
from pairzoo.errors import PairzooError
from pairzoo.experiments.plan import DEFAULT_STACK
from pairzoo.experiments.spec import RULES
from pairzoo.wording import plural

EXPERIMENT_STORE = Path("runs") / "experiments.jsonl"
EXPERIMENT_OUT = Path("runs") / "experiments"
RESULTS = Path("results")


# --- shared ------------------------------------------------------------------------------------


def _pairs(items, option: str) -> dict:
    from pairzoo.config import parse_override

    pairs = {}
    for item in items or []:
        if "=" not in item:
            raise PairzooError(f"{option} takes KEY=VALUE; got {item!r}")
        key, value = parse_override(item)
        pairs[key] = value
    return pairs


def _run_specs(specs, args, store, out_dir: Path) -> int:
    """`store`: its path, or the ResultsStore itself (reproduce reads it again for its page)."""
    from pairzoo.experiments.store import check_appendable, open_store

    store = open_store(store)
    check_appendable(store.path)
    overrides, only = _pairs(args.set, "--set"), _pairs(args.only, "--only")
    if args.dry_run:
        return _dry_run(specs, args, store, overrides, only)
    _check_destinations(store.path, out_dir, tables_only=getattr(args, "tables_only", False))
    out = console()
    if not getattr(args, "tables_only", False):
        choice = _choose_workers(args, _plan_frame(specs, args, store, overrides, only))
        if choice:
            out.print(f"training in {choice}", highlight=False)
    with _dispatcher(args) as dispatcher:
        for spec in specs:
            _run_spec(spec, args, store, overrides, only, out_dir, out, dispatcher)
    out.print(f"store: {store.path}  tables: {out_dir}", highlight=False)
    return 0


def _check_destinations(store_path: Path, out_dir: Path, tables_only: bool) -> None:
    """Before any run trains, as `train` does: the store and the tables' folder can be
    written, with room (a run that trains for minutes and then cannot be stored is lost)."""
    from pairzoo.destinations import check_writable

    if not tables_only:
        check_writable(store_path, "the results store", "--store")
    check_writable(out_dir, "tables", "--out", inside=True)


def _choose_workers(args, frame) -> str | None:
    """Sets args.workers for the local engine when the user gave none: two worker processes
    when the plan keeps them busy (plan.auto_workers), else this process. Returns where and
    why, or None when there was nothing to choose (--workers given, Ray, under two runs)."""
    import os

    from pairzoo.experiments.plan import auto_workers, format_duration

    if args.engine != "local" or args.workers is not None:
        return None
    to_run, seconds = int(frame["to run"].sum()), float(frame["seconds"].sum())
    args.workers = auto_workers(to_run, seconds)
    if args.workers == 1 and to_run < 2:
        return None
    why = (f"{plural(to_run, 'run')} to train, about {format_duration(seconds)} in one process, "
           f"{os.cpu_count()} cores")
    if args.workers == 1:
        stacked = (f", up to {args.stack} runs of a cell at a time in one traced step"
                   if args.stack > 1 else "")
        return (f"this process{stacked}, chosen for this plan ({why}; --workers N for worker "
                "processes)")
    return (f"{args.workers} worker processes, chosen for this plan ({why}; --workers 1 to "
            "train in this process)")


def _dispatcher(args):
    """Where the runs train (--engine, --workers ...): None, i.e. here, by default."""
    import contextlib

    if getattr(args, "tables_only", False):
        return contextlib.nullcontext()
    from pairzoo.experiments.engines import make_dispatcher

    dispatcher = make_dispatcher(args.engine, workers=args.workers, address=args.address,
                                 gpus_per_run=args.gpus_per_run, device=args.device)
    return dispatcher if dispatcher is not None else contextlib.nullcontext()


def _run_spec(spec, args, store, overrides, only, out_dir, out, dispatcher) -> None:
    """Train what one spec still needs (unless --tables-only), then print and write its tables."""
    if getattr(args, "tables_only", False):
        from pairzoo.experiments.plan import plan_table

        outcome = {"plan": plan_table(spec, runs=args.runs, overrides=overrides, only=only,
                                      train_data=args.train_data,
                                      test_data=args.test_data), "search": None}
    else:
        from pairzoo.experiments.runner import run_experiment

        outcome = run_experiment(
            spec, store, runs=args.runs, overrides=overrides, only=only,
            search=args.search and spec.search is not None, search_runs=args.search_runs,
            train_data=args.train_data, test_data=args.test_data, device=args.device,
            dispatcher=dispatcher, stack=args.stack)
    _report(spec, outcome, store, out_dir, plots=not args.no_plots, out=out)


def _report(spec, outcome, store, out_dir: Path, plots: bool, out) -> None:
    from pairzoo.analysis.reporting import spec_table, write_curves, write_table
    from pairzoo.destinations import write_aside, writing
    from pairzoo.experiments.runner import plan_frame

    if outcome["search"] is not None:
        search = outcome["search"]
        out.print(f"{spec.name} search ({spec.search.rule}): chosen "
                  + "; ".join(f"{m}: {lbl}" for m, lbl in
                              zip(search[search["chosen"]]["model"],
                                  search[search["chosen"]]["label"], strict=True)),
                  highlight=False)
        with writing("tables", out_dir, "--out"):
            write_aside(out_dir / f"{spec.name}_search.csv",
                        lambda path: search.to_csv(path, index=False))
    frame = plan_frame(outcome["plan"], store)
    table = spec_table(spec, outcome["plan"], store, frame)
    out.print(table.rich(table_width(out)))
    with writing("tables", out_dir, "--out"):  # the runs are stored: rerun to get them
        write_table(table, out_dir, spec.name, spec.notes)
        if plots:
            write_curves(frame, out_dir, spec.name, table.title, table.marks())


def _plan_frame(specs, args, store, overrides, only, workers: int = 1, times=None, stack=1):
    """One row per experiment stage (cells, runs, done, shared, to run, estimated time on
    `workers` processes, or stacked): what a dry run prints and the worker choice reads."""
    import pandas as pd

    from pairzoo.analysis.reporting import plan_rows
    from pairzoo.experiments.plan import TimeModel, plan_search, plan_table

    rows, seen = [], set()
    times = times or TimeModel(store.rows())
    data = {"train_data": args.train_data, "test_data": args.test_data}
    for spec in specs:
        plans = {}
        if args.search and spec.search is not None:
            plans["search"] = plan_search(spec, runs=args.search_runs, overrides=overrides,
                                          only=only, **data)
        plans["table"] = plan_table(spec, runs=args.runs, overrides=overrides, only=only, **data)
        rows += plan_rows(spec, plans, store, seen, times, workers=workers, stack=stack)
    return pd.DataFrame(rows)


def _dry_run(specs, args, store, overrides, only) -> int:
    from rich.table import Table

    from pairzoo.experiments.plan import TimeModel, format_duration

    times = TimeModel(store.rows())
    frame = _plan_frame(specs, args, store, overrides, only, times=times)
    choice = _choose_workers(args, frame)
    workers = args.workers or 1
    stack = args.stack if args.engine == "local" and workers == 1 else 1
    if workers > 1 or stack > 1:  # the estimates for the way they will train
        frame = _plan_frame(specs, args, store, overrides, only, workers, times, stack)
    columns = ["experiment", "stage", "cells", "runs", "done", "shared", "to run", "estimate"]
    table = Table(title=f"plan (store {store.path})", title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in ("experiment", "stage") else "right")
    for values in frame[columns].itertuples(index=False):
        table.add_row(*map(str, values))
    out = console()
    out.print(table)
    where = (f"one process, runs of a cell up to {stack} at a time" if stack > 1
             else "one process" if workers == 1
             else f"{workers} {'Ray actors' if args.engine == 'ray' else 'worker processes'}")
    out.print(f"{plural(int(frame['to run'].sum()), 'run')} to train, about "
              f"{format_duration(frame['seconds'].sum())} on this machine with {where}.",
              highlight=False)
    if choice:
        out.print(f"It would train in {choice}.", highlight=False)
    if frame["to run"].sum() == 0 and frame["runs"].sum() > 0:
        out.print(f"Every run is already in {store.path}: running the command rebuilds the "
                  "tables from it (as --tables-only does). To train them afresh, give another "
                  "--store (and --out), e.g. --store /tmp/runs.jsonl --out /tmp/tables.",
                  highlight=False)
    if frame["shared"].any():
        out.print("'shared': runs that an earlier table of this plan trains too (same model, "
                  "recipe, seed and data).", highlight=False)
    untimed = sorted({m for models in frame["untimed"] for m in models})
    if untimed:
        out.print(f"No timed run yet for {', '.join(untimed)}: their time is guessed from a "
                  "rough per-step cost.", highlight=False)
    if args.search:
        out.print("The table's runs depend on what the search chooses; counted here at the "
                  "presets' recipes.", highlight=False)
    return 0


def _add_run_options(p) -> None:
    p.add_argument("--runs", type=positive_int,
                   help="repetitions per cell, each with its own seed (default: the spec's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override for every run, e.g. train.epochs=1 (repeatable)")
    p.add_argument("--only", action="append", metavar="AXIS=LEVEL",
                   help="run only matching cells, e.g. model=siamese_lenet5 (repeatable)")
    p.add_argument("--search", action="store_true",
                   help="run the spec's recipe search first and use what it chooses "
                        "(default: the presets' recipes, i.e. what the report chose)")
    p.add_argument("--search-runs", type=positive_int, help="repetitions per search point")
    p.add_argument("--store", type=store_path, help="results store (JSON lines)")
    p.add_argument("--out", type=Path, help="folder for tables (CSV, Markdown) and curves")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (runs, done, to do, estimated time) and stop")
    p.add_argument("--no-plots", action="store_true", help="skip the learning-curve PNGs")
    p.add_argument("--train-data", help=f"{SOURCE_HELP} (default: the spec's, embedded)")
    p.add_argument("--test-data", help="as --train-data (default: the same source)")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process, or --workers processes here (default); "
                        "ray: Ray actors, a local instance or --address's cluster")
    p.add_argument("--workers", type=positive_int,
                   help="worker processes (local; default: two on a machine with 2 or more "
                        "cores when the plan has enough runs to train, else this process) or "
                        "Ray actors (default: one per CPU of the Ray cluster)")
    p.add_argument("--stack", type=positive_int, default=DEFAULT_STACK, metavar="K",
                   help="train up to K runs of a cell at a time in one traced step, in this "
                        f"process (default {DEFAULT_STACK}; 1: one run at a time). Each run "
                        "keeps its seed, pairs and batch order, and its weights come out as "
                        "alone; worker processes and Ray train one run at a time")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a "
                   "local instance on loopback)")
    p.add_argument("--gpus-per-run", type=float, default=0.0, metavar="F",
                   help="Ray: GPUs per run, e.g. 0.25 puts four runs on a card")


# --- experiment ---------------------------------------------------------------------------------


def _inline_spec(args):
    from pairzoo.experiments.spec import parse_values, spec_from_dict
    from pairzoo.registry import list_models

    models = []
    for pattern in args.model:
        found = list_models(pattern)
        if not found:
            from pairzoo.registry import get_preset

            get_preset(pattern)  # raises the unknown-model error with suggestions
        models += [m for m in found if m not in models]
    data = {"experiment": {"name": args.name or "inline", "models": models,
                           "seed": args.seed, "runs": args.runs or 10},
            "grid": dict(parse_values(g, "--grid") for g in args.grid or []),
            "recipe": dict(parse_values(r, "--recipe") for r in args.recipe or [])}
    if args.metric:
        data["experiment"]["metrics"] = args.metric
    if args.select:
        data["search"] = {"rule": args.select, "runs": args.search_runs or 3,
                          "folds": args.folds,
                          "grid": dict(parse_values(g, "--search-grid")
                                       for g in args.search_grid or [])}
    return spec_from_dict(data, source="the command line")


def cmd_experiment(args) -> int:
    from pairzoo.experiments.spec import load_spec

    inline = args.model or args.grid or args.recipe or args.select or args.search_grid
    if args.spec and inline:
        raise PairzooError("give a SPEC or inline --model/--grid/--recipe options, not both")
    if not args.spec and not args.model:
        raise PairzooError("name a SPEC (a TOML file or a shipped spec such as 001_table1) "
                           "or at least one --model")
    if args.select and not args.search_grid:
        raise PairzooError("--select needs --search-grid KEY=V1,V2 (the values to choose from)")
    spec = load_spec(args.spec) if args.spec else _inline_spec(args)
    args.search = args.search or bool(args.select)
    if args.search and spec.search is None:
        raise PairzooError(f"{spec.name} has no [search] section to run")
    store = args.store or EXPERIMENT_STORE
    return _run_specs([spec], args, store, args.out or EXPERIMENT_OUT)


# --- reproduce ----------------------------------------------------------------------------------


def cmd_reproduce(args) -> int:
    from pairzoo.experiments.spec import specs_for_report

    specs = specs_for_report(args.report)
    if args.search:
        specs_without = [s.name for s in specs if s.search is None]
        if len(specs_without) == len(specs):
            raise PairzooError(f"{', '.join(specs_without)} has no [search]: the report "
                               "states its recipes")
    folder = RESULTS / (specs[0].report[:3] or specs[0].name)
    from pairzoo.experiments.store import open_store

    store, out_dir = open_store(args.store or folder / "runs.jsonl"), args.out or folder
    code = _run_specs(specs, args, store, out_dir)
    if not (args.dry_run or args.set or args.only or args.runs or args.search
            or args.train_data or args.test_data):  # the report's own plan: its page
        from pairzoo.analysis.pages import write_report_page

        write_report_page(specs, store, out_dir, plots=not args.no_plots)
    return code


# --- results ------------------------------------------------------------------------------------


def cmd_results(args) -> int:
    from pairzoo.analysis.reporting import store_tables, write_curves, write_table
    from pairzoo.destinations import check_writable, writing
    from pairzoo.experiments.store import open_store

    store = open_store(args.store, must_exist=True)
    _check_metrics(args.metric or [])
    tables = store_tables(store, args.metric, args.experiment)
    if not tables:
        raise PairzooError(f"no experiment in {args.store} matches {args.experiment!r}")
    out = console()
    if args.out:
        check_writable(args.out, "tables", "--out", inside=True)
    if args.format == "table":
        for table in tables:
            out.print(table.rich(table_width(out)))
    elif args.format == "markdown":
        print("\n".join(table.markdown() for table in tables), end="")
    else:  # every number, as the CSV files hold them
        print_frames({table.name: table.summary for table in tables}, args.format)
    if args.out:
        for table in tables:
            with writing("tables", args.out, "--out"):
                write_table(table, args.out, table.name)
                if args.plots:
                    write_curves(table.frame, args.out, table.name, table.title)
        # stdout stays the tables alone when it is CSV, JSON or Markdown
        console(stderr=args.format != "table").print(f"tables: {args.out}", highlight=False)
    return 0


def _check_metrics(metrics) -> None:
    import difflib

    from pairzoo.experiments.spec import METRICS

    for metric in metrics:
        if metric not in METRICS:
            close = difflib.get_close_matches(metric, METRICS, n=2)
            raise PairzooError(f"unknown metric {metric!r}; "
                               + (f"did you mean {', '.join(close)}?" if close
                                  else f"use one of {', '.join(METRICS)}"))


def add_parsers(commands) -> None:
    p = commands.add_parser(
        "experiment", help="repeated runs over models x flags x recipes; tables and curves")
    p.add_argument("spec", nargs="?",
                   help="spec TOML file, or a shipped spec name (zoo_configs/experiments)")
    p.add_argument("--model", action="append", help="inline: a zoo model or pattern "
                   "(repeatable)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="inline: a flag axis, e.g. share_weights=true,false (repeatable)")
    p.add_argument("--recipe", action="append", metavar="KEY=V1,V2",
                   help="inline: a recipe axis, e.g. train.learning_rate=1e-3,1e-2")
    p.add_argument("--metric", action="append",
                   help="inline: metrics to tabulate (default test_error)")
    p.add_argument("--name", help="inline: the experiment's name (inline)")
    p.add_argument("--seed", type=seed_int, default=0,
                   help="inline: the first repetition's seed (0)")
    p.add_argument("--select", choices=RULES,
                   help="inline: choose each model's recipe from --search-grid by this rule")
    p.add_argument("--search-grid", action="append", metavar="KEY=V1,V2",
                   help="inline: the recipe values the search chooses from")
    p.add_argument("--folds", type=int, default=10, help="cross_validation folds (10)")
    _add_run_options(p)
    p.set_defaults(run=cmd_experiment)

    p = commands.add_parser(
        "reproduce", help="run a report's experiments; its tables, ours beside the report's")
    p.add_argument("report", help="001, a report's file name, an author, or a spec name")
    p.add_argument("--tables-only", action="store_true",
                   help="run nothing: tables from what the store already holds")
    _add_run_options(p)
    p.set_defaults(run=cmd_reproduce)

    p = commands.add_parser("results", help="tables (mean, std, count per cell) from a store")
    p.add_argument("store", type=store_path, help="results store (JSON lines)")
    p.add_argument("--experiment", default="*", help="experiment name or pattern (*)")
    p.add_argument("--metric", action="append",
                   help="metric to tabulate (default test_error, digit_accuracy)")
    p.add_argument("--out", type=Path, help="write CSV and Markdown here")
    p.add_argument("--plots", action="store_true", help="with --out: learning-curve PNGs too")
    p.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    p.set_defaults(run=cmd_results)

