"""Argument types and printing helpers shared by the command modules."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line gives one line, not usage plus an error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


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
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


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
