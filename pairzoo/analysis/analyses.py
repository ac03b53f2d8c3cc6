"""`pairzoo effects` in Python: effects and claim verdicts for every table of a store or
report, as numbers (DataFrames), text for people, and files.

    from pairzoo.analysis.analyses import analyses_for
    for analysis in analyses_for("001"):                  # or "results/001/runs.jsonl"
        print(analysis.effects)                           # factor, scope, effect, CI, p, Holm p
        print(analysis.claims[["claim", "verdict", "numbers"]])

A store's rows are taken through the plan of the spec that trained them (a shipped spec, or
`<experiment>.toml` beside the store) so that rows of older presets or of `--set` variants
never mix into a cell; rows outside every plan are counted and left out. An experiment with
no spec is analysed as its rows recorded it (its axes and levels from the rows' cells), a
cell's runs of different recipes apart (pairzoo.analysis.stores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pairzoo.analysis.claims import check_claims
from pairzoo.analysis.effects import effects_table, spec_from_rows
from pairzoo.analysis.stores import spec_for
from pairzoo.analysis.tables import markdown
from pairzoo.errors import PairzooError
from pairzoo.experiments.spec import ExperimentSpec

RESULTS = Path("results")
CSV_FLOATS = "%.12g"  # effects, claims and checks tables (see Analysis.write)


def _points(x) -> str:
    return "-" if pd.isna(x) else f"{x:+.2f}".replace("-", "−")


def _p(p) -> str:
    if pd.isna(p):
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


@dataclass
class Analysis:
    spec: ExperimentSpec
    frame: pd.DataFrame  # the runs analysed
    effects: pd.DataFrame
    claims: pd.DataFrame
    checks: pd.DataFrame
    notes: list[str] = field(default_factory=list)  # rows left out and why

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return f"{self.spec.name}: {self.spec.title}" if self.spec.title else self.spec.name

    # --- for people ---------------------------------------------------------------------------

    def effects_shown(self) -> pd.DataFrame:
        """factor, levels, scope, effect [95 % CI] in points, p, Holm's p."""
        e = self.effects
        return pd.DataFrame({
            "factor": e["factor"], "levels": e["levels"], "scope": e["scope"],
            "effect (points)": [_points(x) for x in e["effect"]],
            "95 % CI": [f"[{_points(lo)}, {_points(hi)}]" if pd.notna(lo) else "-"
                        for lo, hi in zip(e["ci low"], e["ci high"], strict=True)],
            "p": e["p"].map(_p), "p (Holm)": e["p holm"].map(_p), "note": e["note"]})

    def claims_shown(self) -> pd.DataFrame:
        c = self.claims
        return pd.DataFrame({"claim": c["claim"], "verdict": c["verdict"],
                             "our numbers": [f"{n} ({note})" if note else n for n, note in
                                             zip(c["numbers"], c["note"], strict=True)]})

    def markdown(self, level: int = 3, forest: str | None = None) -> str:
        """Effects and claims as Markdown sections (`forest`: the plot's relative path)."""
        hashes = "#" * level
        lines = [f"{hashes} Effects on {self.effects.attrs.get('metric', 'test_error')}", ""]
        if len(self.effects):
            lines += [f"{self.effects.attrs.get('method', '')}. Effect: the level's mean minus "
                      "the reference level's, in points (negative: lower); interactions are "
                      "differences of differences.", "",
                      markdown(self.effects_shown().drop(columns="note")
                               if not self.effects["note"].any() else self.effects_shown()), ""]
        else:
            lines += ["No factor with two levels and runs to compare.", ""]
        if forest:
            lines += [f"![forest plot of {self.name}'s effects]({forest})", ""]
        lines += [f"{hashes} The report's claims", ""]
        if len(self.claims):
            lines += [f"{self.claims.attrs.get('method', '')}. Verdicts at 95 %. In the "
                      "numbers, A is the claim's cell and B what it is compared with; each "
                      "test is marked ✓ holds, ✗ does not hold, ? undecided.", "",
                      markdown(self.claims_shown()), ""]
        else:
            lines += ["This spec records no claims.", ""]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def rich(self, width: int | None = None):
        """(effects, claims) as rich tables for the terminal; on one `width` columns wide,
        the note, p-values and CIs are left out, in that order, rather than a number cut."""
        from pairzoo.analysis.tables import rich_table

        shown = self.effects_shown()
        if not self.effects["note"].any():
            shown = shown.drop(columns="note")
        effects = rich_table(shown, f"{self.title}\n"
                             f"effects on {self.effects.attrs.get('metric')} (points): "
                             f"{self.effects.attrs.get('method')}", width=width,
                             keep=["factor", "levels", "scope", "effect (points)"],
                             droppable=[c for c in ("note", "p", "p (Holm)", "95 % CI")
                                        if c in shown])
        claims = rich_table(self.claims_shown(), f"{self.name}: the report's claims "
                            f"({self.claims.attrs.get('method')})", width=width,
                            keep=["claim", "verdict"], droppable=["our numbers"])
        return effects, claims

    def write(self, out_dir: str | Path, plots: bool = True) -> list[Path]:
        """<name>_effects.csv/.md/.tex, <name>_claims.csv/.md, <name>_checks.csv and the
        forest plot <name>_forest.png/.svg."""
        from pairzoo.analysis.forest import plot_forest
        from pairzoo.analysis.tables import latex

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / self.name
        written = [Path(f"{stem}_effects.csv"), Path(f"{stem}_effects.tex"),
                   Path(f"{stem}_claims.csv"), Path(f"{stem}_checks.csv"),
                   Path(f"{stem}_effects.md")]
        # 12 significant digits: what the statistics resolve, and the same on every CPU (full
        # precision differed in the 15th digit between AVX2 and AVX-512 machines, so
        # regenerating a report rewrote its CSVs)
        self.effects.to_csv(written[0], index=False, float_format=CSV_FLOATS)
        written[1].write_text(latex(self.effects_shown().drop(columns="note"),
                                    f"{self.title}: effects on test error (points); "
                                    f"{self.effects.attrs.get('method')}",
                                    f"tab:{self.name}_effects"), encoding="utf-8")
        self.claims.to_csv(written[2], index=False, float_format=CSV_FLOATS)
        self.checks.to_csv(written[3], index=False, float_format=CSV_FLOATS)
        forest = f"{self.name}_forest.png"
        has_effects = bool(self.effects["effect"].notna().any())
        if plots and has_effects:
            written += plot_forest(self.effects, f"{self.name}: effects on test error, "
                                   "95 % CI per effect", out / f"{self.name}_forest")
        # the page links the plot wherever it exists, drawn now or before: a display flag
        # (--no-plots) never changes what a page says
        if not (has_effects and (out / forest).is_file()):
            forest = None
        written[4].write_text(f"## {self.title}\n\n" + self.markdown(3, forest),
                              encoding="utf-8")
        return written


def analyse(spec: ExperimentSpec, frame: pd.DataFrame, metric: str = "test_error",
            notes: list[str] | None = None) -> Analysis:
    claims, checks = check_claims(spec, frame)
    return Analysis(spec, frame, effects_table(spec, frame, metric), claims, checks,
                    list(notes or []))


def _plan_rows(spec: ExperimentSpec, store) -> pd.DataFrame:
    from pairzoo.experiments.plan import plan_table
    from pairzoo.experiments.runner import plan_frame

    return plan_frame(plan_table(spec), store)


def analyses_of_store(path: str | Path, metric: str = "test_error",
                      experiment: str = "*") -> list[Analysis]:
    """Every table in a store whose experiment matches `experiment`, read as `pairzoo results`
    reads it (pairzoo.analysis.stores): each spec's table through its plan; the table rows of
    an experiment without a spec (or none in its plan) as recorded, split by recipe."""
    from pairzoo.analysis.stores import read_store
    from pairzoo.experiments.store import open_store

    store = open_store(path, must_exist=True)
    planned, leftovers = read_store(store, experiment)
    leftovers = [left for left in leftovers if left.stage == "table"]
    if not planned and not leftovers:
        raise PairzooError(f"no table runs in {store.path} match the experiment "
                           f"{experiment!r}")
    analyses = []
    for table in planned:
        notes = [f"{len(left.frame)} row(s) recorded for {left.experiment} are not in its "
                 "current plan (an older preset, or a --set/--only variant): left out"
                 for left in leftovers if left.planned and left.experiment == table.spec.name]
        analyses.append(analyse(table.spec, table.frame, metric, notes))
    for left in leftovers:
        if not left.planned:
            notes = ([f"no row matches {left.experiment}'s current plan: rows as recorded"]
                     if spec_for(left.experiment, store.path) else [])
            analyses.append(analyse(spec_from_rows(left.experiment, left.frame), left.frame,
                                    metric, notes))
    return analyses


def analyses_of_report(report: str, store_path: str | Path | None = None,
                       metric: str = "test_error") -> list[Analysis]:
    """The tables of one report (`001`, an author, a spec name) from its results store."""
    from pairzoo.experiments.spec import specs_for_report
    from pairzoo.experiments.store import open_store

    specs = specs_for_report(report)
    path = Path(store_path) if store_path else report_folder(specs) / "runs.jsonl"
    store = open_store(path, must_exist=True)
    return [analyse(spec, _plan_rows(spec, store), metric) for spec in specs]


def report_folder(specs: list[ExperimentSpec]) -> Path:
    """results/NNN/ of a report's specs (as `pairzoo reproduce` writes it)."""
    return RESULTS / (specs[0].report[:3] or specs[0].name)


def analyses_for(target: str, store: str | Path | None = None, metric: str = "test_error",
                 experiment: str = "*") -> list[Analysis]:
    """A store file, a folder holding runs.jsonl, or a report (`001`, `uebersax`,
    `001_table2`)."""
    path = Path(target)
    if path.is_dir() and (path / "runs.jsonl").is_file():
        path = path / "runs.jsonl"
    if path.is_file():
        return analyses_of_store(path, metric, experiment)
    if target.endswith(".jsonl") or "/" in target:
        raise PairzooError(f"no results store at {target}; give a store (runs.jsonl), a "
                           "folder holding one, or a report such as 001")
    return analyses_of_report(target, store, metric)
