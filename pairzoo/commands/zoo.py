"""`pairzoo list`: the zoo as a table (reads the TOML presets only; no TensorFlow)."""

from __future__ import annotations

from pairzoo.commands.common import console
from pairzoo.errors import PairzooError


def cmd_list(args) -> int:
    from pairzoo.registry import zoo_rows

    rows = zoo_rows(args.pattern)
    if not rows:
        raise PairzooError(f"no model matches {args.pattern!r}; try `pairzoo list` for all")
    if args.markdown:
        import pandas as pd

        frame = pd.DataFrame(rows, dtype=object)  # object: no int -> float for empty cells
        for column in ("params", "report params"):
            frame[column] = frame[column].map(lambda n: f"{n:,}" if n else "-")
        # disable_numparse: keep "000" a report name and "70,906" as written
        print(frame.to_markdown(index=False, disable_numparse=True))
        return 0
    from rich.table import Table

    table = Table(title=f"pairzoo models ({len(rows)})")
    columns = [c for c in rows[0] if c not in ("recipe", "notes")]
    for column in columns:
        table.add_column(column, justify="right" if "params" in column else "left")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v or "-")
                        for v in (row[c] for c in columns)))
    console().print(table)
    return 0


def add_parsers(commands) -> None:
    p = commands.add_parser("list", help="list the zoo (a pattern such as 'siamese_*' filters)")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (docs/ZOO.md)")
    p.set_defaults(run=cmd_list)
