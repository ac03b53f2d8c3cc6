"""Model cards and export labels: what a model is, what it takes and gives, how good it is.

`model_card` writes a release's README.md (pairzoo.release; `rewrite_cards` rewrites them from
the releases' metadata, without retraining); `export_metadata` is the JSON that travels with
every export (a SavedModel's assets/, a sidecar beside a .tflite or .onnx file), for release
weights and run folders alike. Neither imports Keras. How to prepare the input, how to read
`compare` and what each output means all come from pairzoo.interface.
"""

from __future__ import annotations

import math
from pathlib import Path

from pairzoo.config import ModelConfig
from pairzoo.destinations import write_aside
from pairzoo.interface import (
    COMPARE_LABELS,
    DECISION_RULE,
    DIGIT_LABELS,
    INPUT_NAME,
    PREPROCESSING_TEXT,
    SIGNATURE_KEY,
    UNTRAINED_NOTE,
    digit_outputs_trained,
    input_spec,
    output_meanings,
)
from pairzoo.runs import RunSpec
from pairzoo.zoo import CARD_SEED

CONFIDENCE = 0.95


def _percent(value) -> str:
    return "-" if value is None else f"{value:g} %"


def error_interval(test_error: float, pairs: int) -> tuple[float, float]:
    """The 95 % Wilson interval (in percent) of a test error counted over `pairs` pairs: how far
    another draw of test digits could move it."""
    from statsmodels.stats.proportion import proportion_confint

    wrong = round(test_error * pairs / 100)
    low, high = proportion_confint(wrong, pairs, alpha=1 - CONFIDENCE, method="wilson")
    return 100 * float(low), 100 * float(high)


def error_with_interval(test_error: float | None, pairs: int, bold: bool = False) -> str:
    """'**2.9 %** (95 % CI 2.4-3.3 %; 143 of 5,000 pairs wrong)': the figure at the precision
    its interval resolves (the interval's half-width to one significant digit), the count it
    comes from exactly."""
    if test_error is None:
        return "-"
    low, high = error_interval(test_error, pairs)
    places = max(0, -math.floor(math.log10((high - low) / 2)))
    figure = f"{test_error:.{places}f} %"
    return (f"{f'**{figure}**' if bold else figure} ({100 * CONFIDENCE:g} % CI "
            f"{low:.{places}f}-{high:.{places}f} %; {round(test_error * pairs / 100):,} of "
            f"{pairs:,} pairs wrong)")


def with_intervals(metrics: dict) -> dict:
    """Each measured block of a release's or run's metrics with `test_error_ci95` added."""
    out = {}
    for key, block in metrics.items():
        if isinstance(block, dict) and block.get("test_error") is not None and "pairs" in block:
            block = {**block, "test_error_ci95": [
                round(v, 2) for v in error_interval(block["test_error"], block["pairs"])]}
        out[key] = block
    return out


def _outputs(spec: RunSpec) -> list[str]:
    return (["compare", "digit_a", "digit_b"] if spec.preset.model.has_digit_outputs
            else ["compare"])


def architecture(spec: RunSpec) -> str:
    model = spec.preset.model
    if model.family == "two_channel":
        return (f"one {model.tower.kind.upper()} network reading both digits as two channels; "
                "no digit outputs")
    sharing = "one tower shared by both digits" if model.share_weights else "two towers"
    head = {"mlp": "a learned decision layer", "argmax": "the hard-coded comparison of the two "
            "predicted digits (argmax)", "probabilistic": "the exact probability "
            "P(a <= b) computed from the two digit distributions"}[model.head]
    aux = (f"auxiliary digit losses (weight {model.aux_weight:g})" if model.aux_weight > 0
           else "no auxiliary digit losses")
    return f"siamese {model.tower.kind.upper()}: {sharing}, {head}, {aux}"


def model_card(spec: RunSpec, metadata: dict, description: str) -> str:
    """The release's README.md."""
    name, recipe = spec.name, spec.preset.train
    metrics, report, ours = metadata["metrics"], metadata["report"], metadata.get("results")
    t10k, own = metrics.get("mnist_test", {}), metrics["embedded_test"]
    model = spec.preset.model
    argmax = model.head == "argmax"
    untrained_digits = (model.has_digit_outputs
                        and not digit_outputs_trained(model.head, model.aux_weight))
    rows = [
        ("test error, MNIST test split "
         f"({t10k['pairs']:,} pairs)" if t10k else "test error, MNIST test split",
         error_with_interval(t10k.get("test_error"), t10k["pairs"], bold=True) if t10k
         else "not measured"),
        ("digit accuracy, same pairs", f"- (digit outputs {UNTRAINED_NOTE})"
         if untrained_digits else _percent(t10k.get("digit_accuracy"))),
        (f"test error, its own {own['pairs']:,} test pairs (embedded digits; the reports' "
         "protocol)", error_with_interval(own.get("test_error"), own["pairs"])),
        ("the report's figure", report.get("figure") or "-"),
        ("our mean over the committed runs of this preset",
         (f"{ours['mean']:g}" + (f" ± {ours['std']:g}" if ours.get("std") is not None else "")
          + f" % ({ours['runs']} runs, {', '.join(ours['where'])})") if ours else "-"),
        ("trainable parameters", f"{metadata['params']:,}"),
        ("weights", f"`{_weights_line(metadata)}`"),
    ]
    candidates = metadata["selection"]["candidates"]
    lines = [
        f"# {name}: pairzoo release", "",
        "Is the first of two handwritten digits less than or equal to the second? "
        f"{architecture(spec)}.", "",
        description, "",
        "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), "",
        "## Source", "",
        f"Report `{report.get('report') or '-'}`, its model “{report.get('model') or name}”."
        if report.get("report") else f"Not from a report: {report.get('model') or name}.",
        "", spec.preset.source.notes, "",
        "## How it was trained", "",
        f"{recipe.optimizer} (learning rate {recipe.learning_rate:g}"
        + (", cosine decay" if recipe.lr_schedule == "cosine" else "")
        + f"), {recipe.epochs} epochs, batch {recipe.batch_size}, on "
        f"{metadata['training_data']}. Seeds "
        f"{candidates[0]['seed']}-{candidates[-1]['seed']} were trained; this release is seed "
        f"**{metadata['seed']}**, chosen by {metadata['selection']['rule']}.", "",
        "| seed | final training loss | test error, own test pairs |", "|---|---|---|",
        *(f"| {c['seed']}{' (kept)' if c['seed'] == metadata['seed'] else ''} | "
          f"{'diverged' if c['final_train_loss'] is None else format(c['final_train_loss'], '.4g')}"
          f" | {_percent(c['test_error'])} |" for c in candidates), "",
        "## Input and outputs", "",
        f"Signature `{SIGNATURE_KEY}` in every export. Input `{INPUT_NAME}`. "
        f"{PREPROCESSING_TEXT} Read `compare` as {DECISION_RULE}.", "",
        *(f"- `{k}`: {v}" for k, v in output_meanings(model.head, _outputs(spec),
                                                       model.aux_weight).items()),
        "",
        *(["`compare` of this model is a 0/1 decision (the hard-coded argmax comparison), "
           "not a probability; read it with the same rule.", ""] if argmax else []),
        "## Use", "",
        "```python",
        "import pairzoo",
        f'model = pairzoo.create_model("{name}", weights="zoo")   # sha256-checked',
        "```", "",
        "```bash",
        f"pairzoo predict {name} a.png b.png",
        f"pairzoo export {name} --format tflite      # or savedmodel, onnx, keras",
        f"pairzoo train {name} --init-from zoo       # fine-tune from these weights",
        "```", "",
        "## Intended use and limits", "",
        "- Digits like MNIST's: one centred digit per image, white on black (`--invert` in "
        "`pairzoo predict` for dark ink on paper), any size (fitted to 28x28, then 14x14).",
        "- Trained on 2,000 digits (1,000 pairs) only, as the reports' protocol prescribes: "
        "a teaching and research model, not a production handwriting reader. Errors are "
        "concentrated on ambiguous digits; pairs of equal or adjacent digits are the hardest.",
        "- The figures above come from MNIST's own test split; other handwriting (other "
        "scanners, pens, writers) will do worse.", "",
        "## Reproduce", "",
        "```bash",
        f"pairzoo evaluate {name} --test-data idx:MNIST_DIR --pairs all --seed {CARD_SEED}  "
        "# the MNIST-test-split figure",
        f"pairzoo release {name} --card-data idx:MNIST_DIR --force   # retrain seeds 0-4, "
        "choose, measure",
        "```", "",
        f"Versions: {_versions_line(metadata['versions'])}. Released {metadata['date']}.", "",
    ]
    return "\n".join(lines)


def _weights_line(metadata: dict) -> str:
    return (f"model.weights.h5, {metadata['weights_bytes'] / 1024:,.0f} kB, "
            f"sha256 {metadata['sha256']}")


def _versions_line(versions: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items() if k not in ("backend",))


def export_metadata(config: ModelConfig | None, name: str, metrics: dict | None, origin: str,
                    release: dict | None = None) -> dict:
    """The labels and facts every export carries (SavedModel assets, sidecar JSON). `config`:
    the model's own (a run's preset, or what a bare .keras file's model carries)."""
    from pairzoo.versions import installed_versions

    head = config.head if config else "mlp"
    aux_weight = config.aux_weight if config else 1.0
    outputs = (["compare", "digit_a", "digit_b"] if config is None or config.has_digit_outputs
               else ["compare"])
    trained = "digit_a" in outputs and digit_outputs_trained(head, aux_weight)
    return {
        "model": name, "origin": origin,
        "pairzoo": installed_versions().get("pairzoo"),
        "signature": SIGNATURE_KEY, "input": input_spec(),
        "outputs": output_meanings(head, outputs, aux_weight),
        "labels": {"compare": COMPARE_LABELS, "digit_a": DIGIT_LABELS,
                   "digit_b": DIGIT_LABELS},
        "compare_is_decision": head == "argmax",
        "digit_outputs_trained": trained,
        "metrics": with_intervals(metrics or {}),
        **({"release": {k: release[k] for k in ("seed", "sha256", "date", "params")
                        if k in release}} if release else {}),
    }


def release_card(name: str) -> str:
    """The card a release's metadata, config and preset make (no model, no training)."""
    from pairzoo.registry import preset_description
    from pairzoo.zoo import release_info, release_spec

    return model_card(release_spec(name), release_info(name), preset_description(name))


def rewrite_cards(pattern: str = "*") -> list[str]:
    """Rewrite the README.md of every release matching `pattern` from its metadata (after a
    change to what cards say; the weights and metadata are untouched). Each card is written
    aside and renamed into place. Returns the names whose card changed."""
    from pairzoo.registry import list_models
    from pairzoo.zoo import has_release, release_dir

    changed = []
    for name in list_models(pattern):
        if not has_release(name):
            continue
        path: Path = release_dir(name) / "README.md"
        card = release_card(name)
        if path.is_file() and path.read_text(encoding="utf-8") == card:
            continue
        write_aside(path, lambda tmp, card=card: tmp.write_text(card, encoding="utf-8"))
        changed.append(name)
    return changed
