"""`pairzoo release`: train, choose, measure and write every zoo entry's release folder.

For each entry (pairzoo.zoo reads what this writes):
1. train seeds 0-4 with the entry's own preset on the report protocol (its recipe's 1,000
   training pairs from the embedded digits), every candidate of every entry through the
   experiment engine (`--workers`), each kept as a run folder under
   runs/release/CODE/NAME/seedS with a row in runs/release/CODE/runs.jsonl, so an interrupted
   release resumes run by run;
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

import contextlib
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

from pairzoo.destinations import write_aside
from pairzoo.errors import PairzooError
from pairzoo.registry import get_preset, preset_description
from pairzoo.runs import RunSpec
from pairzoo.zoo import CARD_SEED, WEIGHTS_FILE, release_dir, releases_root, sha256_of

RELEASE_FORMAT = 2
SEEDS = range(5)
SELECTION_RULE = ("the lowest final training loss of seeds 0-4 (the reports' own rule; no "
                  "test data is looked at)")
# The training code every entry runs through: the fast loop, the recipe, the pair protocol,
# the measurements. A change to any of these retrains every entry.
LOOP_CODE = ("pairzoo/recipe.py", "pairzoo/fastpath.py", "pairzoo/data/pairs.py",
             "pairzoo/evaluation.py")
# ... and what only some entries run through: a distilled entry's loop.
DISTILLATION_CODE = ("pairzoo/distillation.py",)
WORK_ROOT = Path("runs") / "release"
RESULTS_ROOT = Path("results")
_PACKAGE = Path(__file__).resolve().parent.parent


def _sources(files) -> str:
    digest = hashlib.sha256()
    for entry in files:
        path = _PACKAGE / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(_PACKAGE).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def code_hash() -> str:
    """The shared training code (where candidates are kept: pairzoo.release.work_folder)."""
    return _sources(LOOP_CODE)


def graph_fingerprint(preset) -> str:
    """What an entry's model *is*, read off the built graph rather than the files that build
    it: every layer's class, configuration and connections (the functional configs of the
    model and its towers), and the source of each pairzoo layer class it uses. A change to
    the model code that leaves an entry's graph as it was (a new option at its default, a
    layer other entries use) leaves its fingerprint, and so its release, as it was."""
    import inspect

    import keras

    from pairzoo.models import all_layers, build_model

    model = build_model(preset.model, name=preset.name)
    functional = keras.src.models.functional.Functional
    parts = [functional.get_config(model)]
    classes = set()
    for layer in all_layers(model):
        inner = getattr(layer, "layer", None)  # TrainingOnly wraps a Keras layer
        for cls in (type(layer), type(inner)):
            if cls.__module__.startswith("pairzoo"):
                classes.add(cls)
    parts.append(sorted(f"{cls.__module__}.{cls.__qualname__}:{inspect.getsource(cls)}"
                        for cls in classes))
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def entry_code(preset) -> dict:
    """The code an entry's release depends on: its graph, the shared training loop, and for
    a distilled entry the distillation loop and its teachers' own code."""
    code = {"graph": graph_fingerprint(preset), "loop": code_hash()}
    if preset.train.teacher:
        code["distillation"] = _sources(DISTILLATION_CODE)
        code["teacher"] = {"config": preset_content(get_preset(preset.train.teacher)),
                           "code": entry_code(get_preset(preset.train.teacher))}
    return code


def preset_content(preset) -> dict:
    """A preset's model and recipe as the run ids hash them (fields at their defaults left
    out, so a new option at its default changes nothing)."""
    from pairzoo.runs import explicit_fields

    return {"model": explicit_fields(preset.model), "train": explicit_fields(preset.train)}


def release_key(spec: RunSpec, seeds, card_source: str | None) -> str:
    content = {"format": RELEASE_FORMAT, "name": spec.name, "preset": preset_content(spec.preset),
               "data": spec.data, "seeds": list(seeds),
               "card": [card_source is not None, CARD_SEED], "code": entry_code(spec.preset)}
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


def work_folder(root: Path = WORK_ROOT) -> Path:
    """Where candidates are trained and kept: one folder per version of the training code, so
    a change to it never reuses candidates trained by the old code."""
    return root / code_hash()[:12]


def candidate_plan(names: list[str], seeds, work: Path):
    """Every candidate of every entry as an experiment's planned runs, each keeping its run
    folder (work/NAME/seedS): the experiment engines train them, here or in workers."""
    from pairzoo.experiments.plan import PlannedRun

    plan = []
    for name in names:
        base = RunSpec(get_preset(name))
        for seed in seeds:
            plan.append(PlannedRun("release", "candidate", {"model": name}, {},
                                   base.replace(seed=seed), keep_model_in=work / name /
                                   f"seed{seed}"))
    return plan


def reuse_kept(plan, store) -> int:
    """Candidates whose training is kept (a distilled run's teachers and students, under
    runs/kept/) become rows and run folders without training again: training is
    deterministic, so a kept model is the candidate training would give. Returns how many."""
    from pairzoo.experiments.runner import _keep, _trainer, make_row
    from pairzoo.training import kept_result

    reused = 0
    for run in plan:
        if store.done(run.run_id):
            continue
        result = kept_result(run.spec)
        if result is None:
            continue
        _keep(result, run.keep_model_in)
        store.append(make_row(run, result, result.metrics["train_seconds"], _trainer()[1]))
        reused += 1
    return reused


def candidates_of(name: str, plan, store) -> list[Candidate]:
    rows = {row["run_id"]: row for row in store.rows()}
    found = []
    for run in plan:
        if run.model != name:
            continue
        row = rows[run.run_id]
        if row.get("status", "ok") != "ok":
            found.append(Candidate(run.seed, None, float("inf"), None))
            continue
        loss = row["history"]["loss"][-1]
        found.append(Candidate(run.seed, run.keep_model_in, float(loss), row["test_error"]))
    return found


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


def release_all(pattern: str, *, card_source: str | None, force: bool = False,
                seeds=SEEDS, workers: int | None = None, work_root: Path = WORK_ROOT,
                say: Callable[[str], None] = print) -> dict[str, str]:
    """Release every entry matching `pattern`: returns name -> "written" / "up to date".

    Candidates of the entries that need a release train first, all of them, through the
    experiment engine (`workers` processes; one store in the work folder, so an interrupted
    release resumes run by run); then each entry is chosen, measured and written."""
    from pairzoo.experiments.engines import make_dispatcher
    from pairzoo.experiments.runner import execute
    from pairzoo.experiments.store import open_store
    from pairzoo.registry import list_models

    names = list_models(pattern)
    if not names:
        raise PairzooError(f"no model matches {pattern!r}; see `pairzoo list`")
    keys = {name: release_key(RunSpec(get_preset(name)), seeds, card_source) for name in names}
    todo = [name for name in names if force or current_key(name) != keys[name]]
    outcome = {name: "up to date" for name in names if name not in todo}
    if not todo:
        return outcome
    work = work_folder(work_root)
    plan = candidate_plan(todo, seeds, work)
    store = open_store(work / "runs.jsonl")
    reused = reuse_kept(plan, store)
    if reused:
        say(f"{reused} candidates reused from kept teachers and students (runs/kept/)")
    with make_dispatcher("local", workers=workers) or contextlib.nullcontext() as dispatcher:
        execute(plan, store, title=f"release candidates ({len(todo)} entries)",
                dispatcher=dispatcher)
    for name in todo:
        start = time.perf_counter()
        candidates = candidates_of(name, plan, store)
        chosen = choose(candidates)
        spec = RunSpec(get_preset(name), seed=chosen.seed)
        metadata = _measure(spec, chosen, candidates, card_source, keys[name])
        _write(name, spec, chosen.run_dir, metadata)
        outcome[name] = "written"
        say(f"{name}: seed {chosen.seed} kept (final train loss "
            f"{chosen.final_train_loss:.4g}); {_card_line(metadata)} "
            f"({time.perf_counter() - start:.0f} s to measure and write)")
    return outcome


def verify_all(pattern: str, *, say: Callable[[str], None] = print) -> dict[str, str]:
    """Retrain each released entry's shipped seed with the code as it is now and compare the
    weights with the shipped ones, bit for bit (training is deterministic on one machine).
    Where they are identical the entry's release key is brought up to date, so a code change
    that leaves an entry as it was costs it no retraining; where not, its key stays stale and
    `pairzoo release` retrains it. Returns name -> "reproduced" / "differs" / "no release"."""
    from pairzoo.registry import list_models
    from pairzoo.training import train
    from pairzoo.zoo import has_release, load_release_model

    outcome = {}
    for name in list_models(pattern):
        if not has_release(name):
            outcome[name] = "no release"
            continue
        path = release_dir(name) / "metadata.json"
        metadata = json.loads(path.read_text())
        start = time.perf_counter()
        spec = RunSpec(get_preset(name), seed=metadata["seed"])
        retrained = train(spec).model.get_weights()
        shipped = load_release_model(name).get_weights()
        same = len(retrained) == len(shipped) and all(
            np.array_equal(a, b) for a, b in zip(retrained, shipped, strict=True))
        outcome[name] = "reproduced" if same else "differs"
        if same:
            card = metadata["metrics"].get("mnist_test")
            metadata["release_key"] = release_key(spec.replace(seed=0), SEEDS,
                                                  card and card["source"])
            metadata["format"] = RELEASE_FORMAT
            text = json.dumps(metadata, indent=2) + "\n"
            write_aside(path, lambda tmp, text=text: tmp.write_text(text))
        say(f"{name}: seed {metadata['seed']} {outcome[name]} "
            f"({time.perf_counter() - start:.0f} s)")
    return outcome


def _card_line(metadata: dict) -> str:
    card = metadata["metrics"].get("mnist_test") or metadata["metrics"]["embedded_test"]
    return f"{card['test_error']:g} % test error on {card['pairs']:,} pairs"


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
