"""`pairzoo list`, `pairzoo show`, `pairzoo runs` and `pairzoo release`: the zoo, one entry,
past runs, release weights. Listing reads TOML and JSON only (no TensorFlow)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pairzoo.commands.common import console, positive_int
from pairzoo.errors import PairzooError

LIST_FORMATS = ("table", "csv", "json", "markdown")
# `pairzoo list` on a narrow terminal drops columns from the end of this order; `name` stays
# `trainable params`: what the golden test and the cards count; keras's count_params() counts
# batch norms' moving statistics too, so the column says which
LIST_COLUMNS = ("name", "weights", "our error", "report figure", "head", "sharing",
                "trainable params", "family", "aux", "report", "report params", "recipe",
                "notes")
COLUMN_ALIASES = {"params": "trainable params"}
DEFAULT_LIST_COLUMNS = LIST_COLUMNS[:-2]


def _cells(rows: list[dict], columns: list[str]) -> list[list[str]]:
    """The rows as display strings (counts with thousands separators, "-" for nothing)."""
    def text(column, value):
        if column in ("trainable params", "report params"):
            return f"{value:,}" if value else "-"
        return str(value) if value not in (None, "") else "-"

    return [[text(c, row[c]) for c in columns] for row in rows]


def plain(columns: list[str], cells: list[list[str]], fmt: str = "plain") -> str:
    """Left-aligned columns, nothing cut (for pipes and files), or a Markdown table; tabulate,
    which pandas' to_markdown uses too, without pandas's import time."""
    from tabulate import tabulate

    return tabulate(cells, headers=columns, tablefmt=fmt, disable_numparse=True)


def _columns(text: str | None) -> list[str]:
    if text is None:
        return list(DEFAULT_LIST_COLUMNS)
    if text == "all":
        return list(LIST_COLUMNS)
    chosen = [COLUMN_ALIASES.get(c.strip(), c.strip()) for c in text.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in LIST_COLUMNS]
    if unknown:
        raise PairzooError(f"unknown column {unknown[0]!r} for --columns; choose from "
                           f"{', '.join(LIST_COLUMNS)}")
    return ["name", *(c for c in chosen if c != "name")]


def cmd_list(args) -> int:
    from pairzoo.zoo import zoo_rows

    rows = zoo_rows(args.pattern)
    if not rows:
        raise PairzooError(f"no model matches {args.pattern!r}; try `pairzoo list` for all")
    fmt = "markdown" if args.markdown else args.format
    columns = _columns("all" if args.markdown and not args.columns else args.columns)
    cells = _cells(rows, columns)
    if fmt == "markdown":  # docs/ZOO.md
        print(plain(columns, cells, "pipe"))
    elif fmt == "csv":  # for machines: numbers as numbers, nothing as empty
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows([columns, *([row[c] for c in columns] for row in rows)])
    elif fmt == "json":
        import json

        print(json.dumps([{c: row[c] or None for c in columns} for row in rows], indent=2,
                         ensure_ascii=False))
    elif not console().is_terminal:
        print(plain(columns, cells))  # piped: plain columns, nothing cut
    else:
        out = console()
        out.print(_fitted_table(columns, cells, out.width))
    return 0


def _fitted_table(columns: list[str], cells: list[list[str]], width: int):
    """A rich table that never cuts a name or a number (pairzoo.terminal.fit): columns are
    left out from the end of LIST_COLUMNS' order until the rest fits, and the others wrap."""
    from rich.table import Table

    from pairzoo.terminal import fit

    def build(shown: list[str]):
        table = Table(title=f"pairzoo models ({len(cells)})", title_justify="left")
        for column in shown:
            table.add_column(column, no_wrap=column == "name",
                             justify="right" if "params" in column or "error" in column
                             else "left")
        for row in cells:
            table.add_row(*(text for column, text in zip(columns, row, strict=True)
                            if column in shown))
        return table

    texts = {column: [row[i] for row in cells] for i, column in enumerate(columns)}
    order = [c for c in reversed(LIST_COLUMNS) if c in columns and c != "name"]
    return fit(build, texts, width, order)[0]


def cmd_show(args) -> int:
    import dataclasses

    import tomli_w
    from rich.table import Table

    from pairzoo.config import settable_keys
    from pairzoo.registry import get_preset, preset_description

    preset = get_preset(args.name)
    out = console()
    source = preset.source
    out.print(f"[bold]{preset.name}[/bold]: {preset_description(preset.name)}")
    if source.report:
        out.print(f"report {source.report}, “{source.model}”: {source.figure}", highlight=False)
    out.print(f"parameters: {source.expected_params:,} trainable", highlight=False)
    _show_release(preset.name, out)
    data = {"model": dataclasses.asdict(preset.model), "train": dataclasses.asdict(preset.train)}
    out.print("\n[bold]resolved preset[/bold] (TOML):")
    print(tomli_w.dumps(data))
    table = Table(title="keys `--set KEY=VALUE` accepts", title_justify="left")
    for column in ("key", "type", "default", "this preset"):
        table.add_column(column)
    for key, kind, default, value in settable_keys(preset):
        table.add_row(key, kind, repr(default), repr(value),
                      style="bold" if value != default else None)
    out.print(table)
    return 0


def _show_release(name: str, out) -> None:
    from pairzoo.references import resolve_model
    from pairzoo.zoo import has_release

    if has_release(name):
        out.print(f"release: {resolve_model(name).describe()}", highlight=False)
    else:
        out.print(f"release: none in this install (`pairzoo release {name}` makes one)",
                  highlight=False)


def cmd_runs(args) -> int:
    from pairzoo.runs import list_runs

    rows = list_runs(args.root, args.pattern)
    if not rows:  # an empty list is an answer, not an error
        what = "runs" if args.pattern == "*" else f"runs of {args.pattern!r}"
        print(f"no {what} in {args.root}/ (`pairzoo train NAME` makes one)")
        return 0
    columns = list(rows[0])
    cells = [[str(row[c]) if c != "test error" else
              ("-" if row[c] is None else f"{row[c]:g} %") for c in columns] for row in rows]
    if console().is_terminal:
        from rich.table import Table

        table = Table(title=f"runs under {args.root}/ (newest first)", title_justify="left")
        for column in columns:
            table.add_column(column, no_wrap=column == "folder",
                             justify="right" if column in ("seed", "test error") else "left")
        for row in cells:
            table.add_row(*row)
        console().print(table)
    else:
        print(plain(columns, cells))
    return 0


def cmd_release(args) -> int:
    from pairzoo.commands.train import loading_tensorflow
    from pairzoo.data.sources import load_source
    from pairzoo.registry import list_models

    if not list_models(args.pattern):
        raise PairzooError(f"no model matches {args.pattern!r}; see `pairzoo list`")
    if args.verify:
        err = console(stderr=True)
        with loading_tensorflow(err):
            from pairzoo.release import verify_all
        outcome = verify_all(args.pattern, say=lambda line: err.print(line, highlight=False))
        same = [name for name, state in outcome.items() if state == "reproduced"]
        console().print(f"{len(same)} of {len(outcome)} reproduced bit for bit (their release "
                        "keys now follow this code)", highlight=False)
        return 0 if len(same) == len(outcome) else 1
    if args.cards_only:  # what the cards say changed, not the weights: no training, no data
        from pairzoo.cards import rewrite_cards

        changed = rewrite_cards(args.pattern)
        console().print(f"{len(changed)} cards rewritten from their metadata; saved_models/",
                        highlight=False)
        return 0
    if args.card_data is None:
        raise PairzooError("--card-data idx:DIR is required: the MNIST test split (t10k idx "
                           "files) every card is measured on")
    load_source(args.card_data)  # data errors now, before hours of training
    err = console(stderr=True)
    with loading_tensorflow(err):
        from pairzoo.release import release_all
    outcome = release_all(args.pattern, card_source=args.card_data, force=args.force,
                          workers=args.workers,
                          say=lambda line: err.print(line, highlight=False))
    written = [name for name, state in outcome.items() if state == "written"]
    console().print(f"{len(written)} written, {len(outcome) - len(written)} up to date; "
                    "saved_models/", highlight=False)
    return 0


def add_parsers(commands) -> None:
    p = commands.add_parser("list", help="list the zoo (a pattern such as 'siamese_*' filters)")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--format", choices=LIST_FORMATS, default="table",
                   help="table (default; plain columns when piped), csv, json, markdown")
    p.add_argument("--columns", help=f"comma-separated, from: {', '.join(LIST_COLUMNS)}; "
                   "or all")
    # the older spelling of `--format markdown --columns all` (docs/ZOO.md)
    p.add_argument("--markdown", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("show", help="one entry: its preset as TOML, its source, its "
                            "release, and every key --set accepts")
    p.add_argument("name", help="zoo model name")
    p.set_defaults(run=cmd_show)

    p = commands.add_parser("runs", help="past training runs, newest first")
    p.add_argument("pattern", nargs="?", default="*", help="model name pattern ('siamese_*')")
    p.add_argument("--root", type=Path, default=Path("runs"), help="where runs are (runs/)")
    p.set_defaults(run=cmd_runs)

    p = commands.add_parser("release", help="train seeds 0-4 of each entry, keep the lowest "
                            "training loss, write saved_models/NAME/ with its card")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--card-data", metavar="idx:DIR",
                   help="the MNIST test split (t10k idx files) the cards are measured on")
    p.add_argument("--force", action="store_true",
                   help="rewrite entries that are up to date (their runs are reused)")
    p.add_argument("--cards-only", action="store_true",
                   help="only rewrite each release's README.md from its metadata.json (no "
                        "training; weights untouched)")
    p.add_argument("--workers", type=positive_int,
                   help="worker processes for the candidates (default 1: this process)")
    p.add_argument("--verify", action="store_true",
                   help="retrain each entry's shipped seed with this code; where the weights "
                   "come out bit for bit as shipped, bring its release key up to date")
    p.set_defaults(run=cmd_release)
