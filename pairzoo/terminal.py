"""Rich tables that never cut a name or a number.

Rich fits a table to the console by narrowing its widest columns first, whatever they hold,
and then every column evenly, cutting words to `siam…` and `20.…`. So:

- output that is not a terminal (a pipe, a log file) gets a console as wide as its content
  (`WIDE`): a table takes the width it needs;
- on a terminal, `fit` leaves columns out, in an order the caller gives, until the rest fits
  with every word whole, and sets each column's width itself: at least its longest word
  (its longest cell where it does not wrap), the room left shared out among the columns that
  would wrap. The table's caption names the columns left out.

Tables here use rich's default frame: a border around and between the columns and one space
of padding on each side of a cell.
"""

from __future__ import annotations

from collections.abc import Callable

WIDE = 10_000  # characters: wider than any table, so none is ever squeezed


def console(stderr: bool = False):
    """A rich console: the terminal's width on a terminal, else as wide as the content."""
    from rich.console import Console

    out = Console(stderr=stderr)
    return out if out.is_terminal else Console(stderr=stderr, width=WIDE)


def _ranges(texts: list[str], no_wrap: bool) -> tuple[int, int]:
    """(narrowest, natural) width of a column holding `texts`: its longest word, or its
    longest text where it does not wrap; and its longest text."""
    from rich.cells import cell_len

    natural = max(cell_len(t) for t in texts)
    if no_wrap:
        return natural, natural
    return max((cell_len(w) for t in texts for w in t.split()), default=1), natural


def _frame(n: int) -> int:
    return 2 * n + n + 1  # a space each side of each cell, and n + 1 borders


def fit(build: Callable[[list[str]], object], cells: dict[str, list[str]], width: int | None,
        droppable: list[str]) -> tuple[object, bool]:
    """`build(columns)` (a rich Table of those columns of `cells`: column name -> its cells as
    text) at `width` (None: any width, each column its natural width). Columns of
    `droppable` are left out, one at a time in that order, until every word fits; a caption
    names them. Returns the table and whether it fits."""
    columns, dropped = list(cells), []
    while True:
        table = build(columns)
        ranges = [_ranges([c, *cells[c]], col.no_wrap) for c, col in zip(columns, table.columns,
                                                                        strict=True)]
        narrowest = sum(low for low, _ in ranges) + _frame(len(columns))
        left = [c for c in droppable if c in columns]
        if width is None or narrowest <= width or not left:
            break
        dropped.append(left[0])
        columns.remove(left[0])
    if dropped:
        table.caption = (f"left out to fit {width} columns: {', '.join(dropped)} (a wider "
                         "terminal, or output to a file or pipe, shows every column)")
        table.caption_justify = "left"
    fits = width is None or narrowest <= width
    natural = sum(high for _, high in ranges) + _frame(len(columns))
    if width is not None and fits and natural > width:
        for column, size in zip(table.columns, _widths(ranges, width - _frame(len(columns))),
                                strict=True):
            column.width = size
    return table, fits


def _widths(ranges: list[tuple[int, int]], room: int) -> list[int]:
    """Each column its narrowest width, and the room left shared in proportion to what each
    lacks of its natural width."""
    widths = [low for low, _ in ranges]
    lacks = [high - low for low, high in ranges]
    spare, total = room - sum(widths), sum(lacks)
    if total:
        given = [spare * lack // total for lack in lacks]
        for index in sorted(range(len(lacks)), key=lambda i: -lacks[i])[:spare - sum(given)]:
            given[index] += 1
        widths = [w + min(g, lack) for w, g, lack in zip(widths, given, lacks, strict=True)]
    return widths
