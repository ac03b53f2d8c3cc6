"""`pairzoo effects`: how much each factor changes the error, with 95 % CIs and Holm-adjusted
p-values, and the report's claims checked on our runs.

The logic lives in pairzoo.analysis.analyses; this module parses, calls it and prints.
"""

from __future__ import annotations

from pathlib import Path

from pairzoo.commands.common import FORMATS, console, print_frames, table_width


def cmd_effects(args) -> int:
    from pairzoo.analysis.analyses import analyses_for
    from pairzoo.experiments.spec import METRICS

    if args.metric not in METRICS:
        from pairzoo.errors import PairzooError

        raise PairzooError(f"unknown metric {args.metric!r}; use one of {', '.join(METRICS)}")
    analyses = analyses_for(args.target, store=args.store, metric=args.metric,
                            experiment=args.experiment)
    out = console()
    if args.format == "table":
        for analysis in analyses:
            effects, claims = analysis.rich(table_width(out))
            out.print(effects)
            if len(analysis.claims):
                out.print(claims)
            for note in analysis.notes:
                out.print(f"{analysis.name}: {note}", highlight=False)
    elif args.format == "markdown":
        print("\n".join(f"## {a.title}\n\n{a.markdown(3)}" for a in analyses), end="")
    elif args.format == "json":
        _print_json(analyses)
    else:  # the effects, every number; claims are in --format json and markdown, and --out
        print_frames({a.name: a.effects for a in analyses}, "csv")
        for analysis in analyses:
            for note in analysis.notes:
                console(stderr=True).print(f"{analysis.name}: {note}", highlight=False)
    if args.out:
        for analysis in analyses:
            analysis.write(args.out, plots=not args.no_plots)
        console(stderr=args.format != "table").print(
            f"effects, claims and forest plots: {args.out}", highlight=False)
    return 0


def _print_json(analyses) -> None:
    import json

    def records(frame):
        return json.loads(frame.to_json(orient="records"))

    print(json.dumps([{"table": a.name, "title": a.title, "effects": records(a.effects),
                       "claims": records(a.claims), "notes": a.notes} for a in analyses],
                     indent=2, ensure_ascii=False))


def add_parsers(commands) -> None:
    p = commands.add_parser(
        "effects", help="effects of each factor with 95 %% CIs; the report's claims checked")
    p.add_argument("target", help="a results store (runs.jsonl), a folder holding one, or a "
                   "report: 001, an author, a spec name")
    p.add_argument("--store", type=Path, help="with a report: its store (default "
                   "results/NNN/runs.jsonl)")
    p.add_argument("--metric", default="test_error",
                   help="metric the effects are on (default test_error; claims name theirs)")
    p.add_argument("--experiment", default="*", help="with a store: experiment name or "
                   "pattern (*)")
    p.add_argument("--out", type=Path, help="write <table>_effects.csv/.md/.tex, _claims.csv, "
                   "_checks.csv and the forest plot (PNG, SVG) here")
    p.add_argument("--no-plots", action="store_true", help="with --out: skip the forest plots")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table: rich tables (default); csv: the effects, every number, one CSV "
                   "with a `table` column; json: effects, claims and notes per table; "
                   "markdown: as the results pages show them")
    p.set_defaults(run=cmd_effects)
