"""Tables never cut a name or a number: piped, a table takes the width it needs; on a narrow
terminal, columns are left out (or a table's axes join into one wrapping column) rather than a
name become `siam…` or a number `20.…`. And `--format csv|json|markdown` for machines."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

RESULTS = Path(__file__).resolve().parents[1] / "results"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TOKEN = re.compile(r"[A-Za-z0-9_.+−-]+")  # names, levels and numbers, without brackets


def tokens(text: str) -> set[str]:
    return set(TOKEN.findall(ANSI.sub("", text)))


def missing(shown: pd.DataFrame, text: str) -> list[str]:
    """Names and numbers of `shown` that the drawn `text` does not hold whole."""
    drawn = tokens(text)
    return sorted({t for value in shown.to_numpy().ravel() for t in TOKEN.findall(str(value))
                   if t not in drawn})


@pytest.fixture
def terminal(monkeypatch):
    """A terminal 60 columns wide, as rich sees one."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "60")


def store_tables(folder: str):
    from pairzoo.analysis.reporting import store_tables as tables
    from pairzoo.experiments.store import open_store

    return tables(open_store(RESULTS / folder / "runs.jsonl"))


def test_piped_results_keep_every_name_and_number(pairzoo_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")  # a width rich would obey; piped output ignores it
    out = pairzoo_cli("results", str(RESULTS / "001" / "runs.jsonl")).stdout
    assert "…" not in out
    for table in store_tables("001"):
        for values in table.shown.itertuples(index=False):
            assert re.search(r"\s+│\s+".join(map(re.escape, values)), out), values


def test_piped_reproduce_and_effects_keep_every_name_and_number(pairzoo_cli, tmp_path):
    import shutil

    shutil.copytree(RESULTS / "002", tmp_path / "002")
    store = tmp_path / "002" / "runs.jsonl"
    out = pairzoo_cli("reproduce", "002", "--tables-only", "--no-plots", "--store", str(store),
                      "--out", str(tmp_path / "002")).stdout
    assert "…" not in out and "siamese_conv3_aux" in out and "12.51 ± 0.98" in out
    effects = pairzoo_cli("effects", "002", "--store", str(store)).stdout
    assert "…" not in effects
    from pairzoo.analysis.analyses import analyses_for

    for analysis in analyses_for("002", store=store):
        assert not missing(analysis.effects_shown(), effects)


@pytest.mark.parametrize("folder", ["001", "002", "004"])
def test_a_narrow_terminal_never_cuts_a_name_or_a_number(folder):
    from rich.console import Console

    for table in store_tables(folder):
        screen = Console(width=60, file=io.StringIO(), force_terminal=True)
        screen.print(table.rich(60))
        text = screen.file.getvalue()
        assert "…" not in text, (table.name, text)
        plain = " ".join(ANSI.sub("", text).split())
        caption = plain[plain.find("left out to fit"):] if "left out" in plain else ""
        kept = [c for c in table.shown.columns if c not in caption]
        assert not missing(table.shown[kept], text), table.name
        assert max(len(line) for line in ANSI.sub("", text).splitlines()) <= 60


def test_results_effects_and_list_on_a_narrow_terminal(pairzoo_cli, terminal):
    store = str(RESULTS / "004" / "runs.jsonl")
    for args in (["results", store], ["effects", "004", "--store", store], ["list"]):
        out = ANSI.sub("", pairzoo_cli(*args).stdout)
        assert "…" not in out, args
        assert max(len(line) for line in out.splitlines()) <= 60, args
    from pairzoo.zoo import zoo_rows

    listing = pairzoo_cli("list").stdout
    rows = zoo_rows("*")
    errors = {t for row in rows for t in TOKEN.findall(str(row["our error"] or ""))}
    names = {row["name"] for row in rows}
    # the names and, in columns kept (once drawn 2 characters wide, empty), the numbers whole
    assert names | errors <= tokens(listing), (names | errors) - tokens(listing)


def test_results_in_csv_json_and_markdown(pairzoo_cli):
    store = str(RESULTS / "004" / "runs.jsonl")
    frame = pd.read_csv(io.StringIO(pairzoo_cli("results", store, "--format", "csv").stdout))
    row = frame[(frame["table"] == "004_table1") & (frame["model"] == "siamese_convnet4")]
    assert row["test_error mean"].round(2).tolist() == [11.18]
    assert row["test_error report"].tolist() == [8.86]
    tables = json.loads(pairzoo_cli("results", store, "--format", "json").stdout)
    assert [t["table"] for t in tables][:2] == ["004_table1", "004_table2"]
    assert tables[1]["rows"][0]["test_error report std"] == 1.62
    markdown = pairzoo_cli("results", store, "--format", "markdown").stdout
    assert markdown.startswith("## 004_table1") and "| siamese_convnet4" in markdown
    for name in ("004_table1", "004_table2"):  # as reproduce writes them, notes included
        assert (RESULTS / "004" / f"{name}.md").read_text() in markdown, name


def test_effects_in_csv_json_and_markdown(pairzoo_cli):
    store = str(RESULTS / "004")
    frame = pd.read_csv(io.StringIO(pairzoo_cli("effects", store, "--format", "csv").stdout))
    assert set(frame["table"]) == {"004_table1", "004_table2"}
    assert {"factor", "effect", "ci low", "ci high", "p holm"} <= set(frame.columns)
    analyses = json.loads(pairzoo_cli("effects", store, "--format", "json").stdout)
    assert analyses[1]["claims"] and "verdict" in analyses[1]["claims"][0]
    markdown = pairzoo_cli("effects", store, "--format", "markdown").stdout
    assert "### Effects on test_error" in markdown and "### The report's claims" in markdown
