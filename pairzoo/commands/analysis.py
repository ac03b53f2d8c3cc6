"""`pairzoo effects`: how much each factor changes the error, with 95 % CIs and Holm-adjusted
p-values, and the report's claims checked on our runs.

The logic lives in pairzoo.analysis.analyses; this module parses, calls it and prints.
"""

from __future__ import annotations

from pathlib import Path

from pairzoo.commands.common import console


def cmd_effects(args) -> int:
    from pairzoo.analysis.analyses import analyses_for
    from pairzoo.experiments.spec import METRICS

    if args.metric not in METRICS:
        from pairzoo.errors import PairzooError

        raise PairzooError(f"unknown metric {args.metric!r}; use one of {', '.join(METRICS)}")
    out = console()
    for analysis in analyses_for(args.target, store=args.store, metric=args.metric,
                                 experiment=args.experiment):
        effects, claims = analysis.rich()
        out.print(effects)
        if len(analysis.claims):
            out.print(claims)
        for note in analysis.notes:
            out.print(f"{analysis.name}: {note}", highlight=False)
        if args.out:
            analysis.write(args.out, plots=not args.no_plots)
    if args.out:
        out.print(f"effects, claims and forest plots: {args.out}", highlight=False)
    return 0


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
    p.set_defaults(run=cmd_effects)
