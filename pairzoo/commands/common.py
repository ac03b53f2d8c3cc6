"""Argument types and printing helpers shared by the command modules."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line gives one line, not usage plus an error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def console(stderr: bool = False):
    """The terminal's width on a terminal; piped or redirected, as wide as the content, so
    that no table is ever squeezed (pairzoo.terminal)."""
    from pairzoo.terminal import console as make

    return make(stderr)


def table_width(out) -> int | None:
    """The width a table must fit: the terminal's, or None (any) when output is not one."""
    return out.width if out.is_terminal else None


FORMATS = ("table", "csv", "json", "markdown")
FORMAT_HELP = ("table: rich tables (default); csv: every number, one CSV with a `table` column; "
               "json: the same per table; markdown: the tables as the results pages show them")


def print_frames(frames: dict, fmt: str) -> None:
    """Tables (name -> pandas DataFrame) on stdout as one CSV (a leading `table` column) or
    JSON (a list of {"table", "rows"})."""
    import json
    import sys

    import pandas as pd

    if fmt == "csv":
        joined = pd.concat([frame.assign(table=name)[["table", *frame.columns]]
                            for name, frame in frames.items()], ignore_index=True)
        joined.to_csv(sys.stdout, index=False, lineterminator="\n")
    else:
        print(json.dumps([{"table": name, "rows": json.loads(frame.to_json(orient="records"))}
                          for name, frame in frames.items()], indent=2, ensure_ascii=False))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):  # nan and inf parse as floats
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def seed_int(text: str) -> int:
    """--seed: pairzoo.seeds' one range, reported by argparse with the option's name."""
    from pairzoo.seeds import SEED_RANGE, check_seed

    try:
        return check_seed(int(text))
    except ValueError:  # from int(), or check_seed's ConfigError (a ValueError)
        raise argparse.ArgumentTypeError(f"expected {SEED_RANGE}, got {text!r}") from None


def store_path(text: str) -> Path:
    """--store and `results STORE`: a results store is a file, never a folder."""
    from pairzoo.errors import PairzooError
    from pairzoo.experiments.store import check_store_path

    try:
        return check_store_path(text)
    except PairzooError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def metrics_table(title: str, metrics: dict):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    # rates are in percent, already rounded to what the test set resolves (evaluation.score)
    formats = {"params": "{:,}", "train_seconds": "{:.1f} s"}
    for key, value in metrics.items():
        table.add_row(key, formats.get(key, "{:g} %").format(value))
    return table
