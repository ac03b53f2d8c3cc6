"""The committed results pages: every link resolves, every report page shows its tables,
effects, claims, forest plot and discussion, and the pages match what the stores give today."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
REPORTS = ["000", "001", "002", "003", "004"]
# [text](target) and ![alt](target); the target ends at the first ")" or space
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    return [RESULTS / "README.md", *(RESULTS / r / "README.md" for r in REPORTS)]


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(page.read_text(encoding="utf-8"))
            if not re.match(r"[a-z]+://", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_on_the_results_pages_exists(page):
    assert page.is_file()
    targets = links(page)
    assert targets, f"{page} links nothing"
    missing = [t for t in targets if not (page.parent / t.split("#")[0]).exists()]
    assert not missing, f"{page.relative_to(REPO)} links missing files: {missing}"


def test_results_readme_links_every_report_page():
    targets = set(links(RESULTS / "README.md"))
    assert {f"{r}/README.md" for r in REPORTS} <= targets


@pytest.mark.parametrize("report", REPORTS)
def test_each_report_page_shows_tables_effects_claims_plots_and_discussion(report):
    from pairzoo.experiments.spec import specs_for_report

    text = (RESULTS / report / "README.md").read_text(encoding="utf-8")
    assert "## Discussion" in text and "95 % CI" in text and "Holm" in text
    for spec in specs_for_report(report):
        for piece in (f"{spec.name}.tex", f"curves/{spec.name}/overview.png",
                      f"{spec.name}_forest.png", "### Effects on test_error",
                      "### The report's claims"):
            assert piece in text, (report, piece)
        for claim in spec.claims:  # every claim with its verdict
            assert claim.text.replace("|", "\\|") in text, (report, claim.text)
        for stem in (f"curves/{spec.name}/overview", f"{spec.name}_forest"):
            assert (RESULTS / report / f"{stem}.svg").is_file()  # vector beside each PNG


@pytest.mark.parametrize("report", REPORTS)
def test_report_pages_match_the_stores(report):
    """A page regenerated now equals the committed one: run `pairzoo reproduce NNN
    --tables-only` after changing a store, a spec or discussion.md."""
    from pairzoo.analysis.analyses import analyse
    from pairzoo.analysis.pages import report_page
    from pairzoo.analysis.reporting import spec_table
    from pairzoo.experiments.plan import plan_table
    from pairzoo.experiments.runner import plan_frame
    from pairzoo.experiments.spec import specs_for_report
    from pairzoo.experiments.store import open_store

    folder = RESULTS / report
    store = open_store(folder / "runs.jsonl")
    sections = []
    for spec in specs_for_report(report):
        plan = plan_table(spec)
        frame = plan_frame(plan, store)
        sections.append((spec, spec_table(spec, plan, store, frame), analyse(spec, frame)))
    assert report_page(report, sections, folder) == (folder / "README.md").read_text(
        encoding="utf-8"), f"results/{report}/README.md is stale: pairzoo reproduce {report} " \
                           "--tables-only"


def test_docs_state_the_004_optimizer_the_presets_use():
    text = (REPO / "docs" / "EXPERIMENTS.md").read_text(encoding="utf-8")
    assert "SGD assumed" not in text and "the presets use Adam" in text


def test_regenerating_a_report_without_plots_rewrites_nothing(pairzoo_cli, tmp_path):
    """`--no-plots` only skips drawing: the same store gives byte-identical pages and tables
    (004's effects pages once lost their forest plot's link)."""
    import shutil

    copy = tmp_path / "004"
    shutil.copytree(RESULTS / "004", copy)
    pairzoo_cli("reproduce", "004", "--tables-only", "--no-plots",
                "--store", str(copy / "runs.jsonl"), "--out", str(copy))
    changed = [str(path.relative_to(copy)) for path in sorted(copy.rglob("*"))
               if path.is_file() and path.read_bytes() != (RESULTS / "004" / path.relative_to(
                   copy)).read_bytes()]
    assert not changed, f"pairzoo reproduce 004 --tables-only --no-plots rewrote {changed}"


STORES = sorted(path.parent.name for path in RESULTS.glob("*/runs.jsonl"))


@pytest.mark.parametrize("folder", STORES)
def test_results_on_a_committed_store_gives_the_tables_reproduce_gives(folder):
    """`pairzoo results STORE` and `pairzoo reproduce --tables-only` read a store the same way:
    every table reproduce prints appears, cell for cell and number for number, report column
    included; and no table of `results` averages runs of different recipes (004's
    siamese_convnet4 was once 14.30 ± 3.53 % over 10 SGD + 10 Adam runs)."""
    from pairzoo.analysis import rows
    from pairzoo.analysis.reporting import spec_table, store_tables
    from pairzoo.experiments.plan import plan_table
    from pairzoo.experiments.spec import specs_for_report
    from pairzoo.experiments.store import open_store

    store = open_store(RESULTS / folder / "runs.jsonl")
    names = ([folder] if folder in REPORTS
             else list(dict.fromkeys(row["experiment"] for row in store.rows())))
    specs = {spec.name: spec for name in names for spec in specs_for_report(name)}
    tables = {table.name: table for table in store_tables(store)}
    for name, spec in specs.items():
        expected = spec_table(spec, plan_table(spec), store)
        assert name in tables, f"results {folder} lacks {name}"
        pd.testing.assert_frame_equal(tables[name].shown, expected.shown)
        assert tables[name].title == expected.title
    for table in tables.values():
        recipes = table.frame.assign(key=[rows.recipe_key(rows.recipe(r))
                                          for r in table.frame.to_dict("records")])
        mixed = recipes.groupby("cell_label")["key"].nunique()
        assert (mixed == 1).all(), f"{table.name} mixes recipes in {list(mixed[mixed > 1].index)}"


def test_results_prints_004_as_reproduce_does_and_001_table2_whole(pairzoo_cli):
    out = pairzoo_cli("results", str(RESULTS / "004" / "runs.jsonl")).stdout
    assert "11.18 ± 1.20" in out and "14.30" not in out  # Adam runs only, as the page says
    # the SGD runs the store also holds: their own rows, saying how they differ
    assert "runs outside its plan" in out and "optimizer=sgd" in out
    table2 = pairzoo_cli("results", str(RESULTS / "001" / "runs.jsonl"), "--experiment",
                         "001_table2").stdout
    body = [line for line in table2.splitlines() if line.startswith("│ siamese_lenet5")]
    assert len(body) == 8 and "(report)" in table2 and "9.62 ± 2.74" in table2
