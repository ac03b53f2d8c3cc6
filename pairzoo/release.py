"""`pairzoo release`: train, choose, measure and write every zoo entry's release folder.

For each entry (pairzoo.zoo reads what this writes):
1. train seeds 0-4 with the entry's own preset on the report protocol (its recipe's 1,000
   training pairs from the embedded digits); each candidate is kept as a run folder under
   runs/release/NAME/, so an interrupted release resumes run by run;
2. keep the candidate with the lowest final training loss: the reports' own selection rule,
   which never looks at test data (a diverged candidate is never chosen);
3. measure it on every pair of the MNIST test split (all 10,000 t10k digits, 5,000 pairs,
   seed 0) and on its own test pairs (the protocol results/ uses);
4. write saved_models/NAME/ (config.json, model.weights.h5, metadata.json, README.md) aside
   and rename it into place.

An entry whose release key (its resolved preset, the seeds, the data, the measuring protocol
and the source of the code that builds and trains its model) matches the one in its
metadata.json is skipped, so rerunning after an interruption or a change redoes only what
changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pairzoo.errors import DivergedError, PairzooError
from pairzoo.registry import get_preset, preset_description
from pairzoo.runs import RunSpec
from pairzoo.zoo import CARD_SEED, WEIGHTS_FILE, release_dir, releases_root, sha256_of

RELEASE_FORMAT = 1
SEEDS = range(5)
SELECTION_RULE = ("the lowest final training loss of seeds 0-4 (the reports' own rule; no "
                  "test data is looked at)")
# The source files that decide what a release's weights are: the model graph, its layers, the
# recipe, the fast training loop, the pair protocol. A change to any retrains every entry.
RELEASE_CODE = ("pairzoo/towers", "pairzoo/models.py", "pairzoo/layers.py", "pairzoo/heads.py",
                "pairzoo/recipe.py", "pairzoo/fastpath.py", "pairzoo/data/pairs.py",
                "pairzoo/evaluation.py")
WORK_ROOT = Path("runs") / "release"
RESULTS_ROOT = Path("results")


def code_hash() -> str:
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for entry in RELEASE_CODE:
        path = package / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(package).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def release_key(spec: RunSpec, seeds, card_source: str | None) -> str:
    content = {"format": RELEASE_FORMAT, "config": spec.to_config(), "seeds": list(seeds),
               "card": [card_source is not None, CARD_SEED], "code": code_hash()}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def current_key(name: str) -> str | None:
    path = release_dir(name) / "metadata.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("release_key")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


@dataclass
class Candidate:
    seed: int
    run_dir: Path | None  # None: diverged
    final_train_loss: float
    test_error: float | None  # on its own test pairs (embedded), for the card's table


def train_candidate(spec: RunSpec, key: str, work: Path) -> Candidate:
    """One seed's run folder under `work` (reused when it was trained for this key)."""
    from pairzoo.training import save_run, train

    run_dir = work / f"seed{spec.seed}"
    marker = run_dir / "release_key"
    if marker.is_file() and marker.read_text().strip() == key:
        return _read_candidate(spec.seed, run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    try:
        result = train(spec)
    except DivergedError:
        return Candidate(spec.seed, None, float("inf"), None)
    save_run(result, run_dir)
    marker.write_text(key + "\n")
    return _read_candidate(spec.seed, run_dir)


def _read_candidate(seed: int, run_dir: Path) -> Candidate:
    import pandas as pd

    loss = float(pd.read_csv(run_dir / "history.csv")["loss"].iloc[-1])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return Candidate(seed, run_dir, loss, metrics["test_error"])


def choose(candidates: list[Candidate]) -> Candidate:
    finite = [c for c in candidates if np.isfinite(c.final_train_loss)]
    if not finite:
        raise PairzooError(f"every candidate diverged (seeds {[c.seed for c in candidates]}); "
                           "the preset's recipe needs a lower learning rate")
    return min(finite, key=lambda c: (c.final_train_loss, c.seed))


def results_mean(spec: RunSpec, root: Path = RESULTS_ROOT) -> dict | None:
    """Our N-run figure of exactly this preset and data from the committed stores."""
    ids = {spec.replace(seed=s).run_id for s in range(100)}
    errors, where = [], set()
    for store in sorted(root.glob("*/runs.jsonl")):
        for line in store.read_bytes().splitlines():
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if (isinstance(row, dict) and row.get("run_id") in ids
                    and row.get("status", "ok") == "ok" and row.get("test_error") is not None):
                ids.discard(row["run_id"])  # a run two stores share counts once
                errors.append(float(row["test_error"]))
                where.add(store.parent.as_posix())
    if not errors:
        return None
    return {"runs": len(errors), "mean": round(float(np.mean(errors)), 2),
            "std": round(float(np.std(errors, ddof=1)), 2) if len(errors) > 1 else None,
            "where": sorted(where)}


def build_release(name: str, *, card_source: str | None, seeds=SEEDS, force: bool = False,
                  work_root: Path = WORK_ROOT, say: Callable[[str], None] = print) -> str:
    """Release one entry; returns "written" or "up to date"."""
    preset = get_preset(name)
    base = RunSpec(preset)
    key = release_key(base, seeds, card_source)
    if not force and current_key(name) == key:
        return "up to date"
    work = work_root / name
    start = time.perf_counter()
    candidates = []
    for seed in seeds:
        candidate = train_candidate(base.replace(seed=seed), key, work)
        candidates.append(candidate)
        loss = ("diverged" if candidate.run_dir is None
                else f"final train loss {candidate.final_train_loss:.4g}")
        say(f"{name} seed {seed}: {loss}")
    chosen = choose(candidates)
    metadata = _measure(base.replace(seed=chosen.seed), chosen, candidates, card_source, key)
    metadata["seconds"] = round(time.perf_counter() - start, 1)
    _write(name, base.replace(seed=chosen.seed), chosen.run_dir, metadata)
    return "written"


def _measure(spec: RunSpec, chosen: Candidate, candidates, card_source, key) -> dict:
    from pairzoo.evaluation import evaluate
    from pairzoo.models import count_trainable_params
    from pairzoo.runs import load_model
    from pairzoo.training import package_versions

    model = load_model(chosen.run_dir, compile=False)
    own = spec.test_pairs()
    metrics = {"embedded_test": {"source": f"{spec.test_source} test pool", "pairs": len(own),
                                 "seed": spec.seed, **evaluate(model, own)}}
    if card_source is not None:
        pairs = spec.test_pairs(None, test_data=card_source, seed=CARD_SEED, whole_split=True)
        metrics["mnist_test"] = {"source": "MNIST test split (t10k), every image",
                                 "pairs": len(pairs), "seed": CARD_SEED,
                                 **evaluate(model, pairs)}
    source = spec.preset.source
    return {
        "name": spec.name, "release_key": key, "format": RELEASE_FORMAT,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"), "versions": package_versions(),
        "params": count_trainable_params(model), "seed": spec.seed,
        "training_data": f"{spec.preset.train.n_train:,} pairs from the {spec.train_data} "
                         "digits' train pool (report protocol)",
        "selection": {"rule": SELECTION_RULE, "candidates": [
            {"seed": c.seed, "final_train_loss": (None if not np.isfinite(c.final_train_loss)
                                                  else round(c.final_train_loss, 6)),
             "test_error": c.test_error} for c in candidates]},
        "metrics": metrics,
        "report": {"report": source.report, "model": source.model, "figure": source.figure,
                   "test_error": source.test_error or None,
                   "test_error_std": source.test_error_std or None},
        "results": results_mean(spec.replace(seed=0)),
    }


def _write(name: str, spec: RunSpec, run_dir: Path, metadata: dict) -> None:
    from pairzoo.cards import model_card
    from pairzoo.runs import load_model

    target = release_dir(name)
    staging = releases_root() / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model = load_model(run_dir, compile=False)
        model.save_weights(staging / WEIGHTS_FILE)
        metadata["sha256"] = sha256_of(staging / WEIGHTS_FILE)
        metadata["weights_bytes"] = (staging / WEIGHTS_FILE).stat().st_size
        (staging / "config.json").write_text(json.dumps(spec.to_config(), indent=2) + "\n")
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        (staging / "README.md").write_text(model_card(spec, metadata,
                                                      preset_description(name)))
        old = releases_root() / f".{name}.old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def release_all(pattern: str, *, card_source: str | None, force: bool = False,
                say: Callable[[str], None] = print) -> dict[str, str]:
    from pairzoo.registry import list_models

    names = list_models(pattern)
    if not names:
        raise PairzooError(f"no model matches {pattern!r}; see `pairzoo list`")
    outcome = {}
    for name in names:
        start = time.perf_counter()
        outcome[name] = build_release(name, card_source=card_source, force=force, say=say)
        say(f"{name}: {outcome[name]} ({time.perf_counter() - start:.0f} s)")
    return outcome
