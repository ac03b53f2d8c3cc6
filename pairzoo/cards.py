"""Model cards and export labels: what a model is, what it takes and gives, how good it is.

`model_card` writes a release's README.md (pairzoo.release); `export_metadata` is the JSON
that travels with every export (a SavedModel's assets/, a sidecar beside a .tflite or .onnx
file), for release weights and run folders alike. Neither imports Keras.
"""

from __future__ import annotations

from pairzoo.config import ModelConfig
from pairzoo.interface import (
    COMPARE_LABELS,
    DIGIT_LABELS,
    INPUT_NAME,
    SIGNATURE_KEY,
    input_spec,
    output_meanings,
)
from pairzoo.runs import RunSpec
from pairzoo.zoo import CARD_SEED


def _percent(value) -> str:
    return "-" if value is None else f"{value:g} %"


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
    argmax = spec.preset.model.head == "argmax"
    rows = [
        ("test error, MNIST test split "
         f"({t10k['pairs']:,} pairs)" if t10k else "test error, MNIST test split",
         f"**{_percent(t10k.get('test_error'))}**" if t10k else "not measured"),
        ("digit accuracy, same pairs", _percent(t10k.get("digit_accuracy"))),
        (f"test error, its own {own['pairs']:,} test pairs (embedded digits; the reports' "
         "protocol)", _percent(own.get("test_error"))),
        ("the report's figure", report.get("figure") or "-"),
        ("our mean over the committed runs of this preset",
         (f"{ours['mean']:g}" + (f" ± {ours['std']:g}" if ours.get("std") is not None else "")
          + f" % ({ours['runs']} runs, {', '.join(ours['where'])})") if ours else "-"),
        ("parameters", f"{metadata['params']:,}"),
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
        f"Signature `{SIGNATURE_KEY}` in every export. Input `{INPUT_NAME}`: float32 "
        f"(N, 2, 14, 14), raw 0-255 pixels, `pair[:, 0]` the first digit; white digits on "
        "black as in MNIST (28x28 images average-pooled 2x2). Normalisation is inside the "
        "model.", "",
        *(f"- `{k}`: {v}" for k, v in output_meanings(spec.preset.model.head,
                                                       _outputs(spec)).items()),
        "",
        *(["`compare` of this model is a 0/1 decision (the hard-coded argmax comparison), "
           "not a probability; threshold it at 0.5 like the others.", ""] if argmax else []),
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
    outputs = (["compare", "digit_a", "digit_b"] if config is None or config.has_digit_outputs
               else ["compare"])
    return {
        "model": name, "origin": origin,
        "pairzoo": installed_versions().get("pairzoo"),
        "signature": SIGNATURE_KEY, "input": input_spec(),
        "outputs": output_meanings(head, outputs),
        "labels": {"compare": COMPARE_LABELS, "digit_a": DIGIT_LABELS,
                   "digit_b": DIGIT_LABELS},
        "compare_is_decision": head == "argmax",
        "metrics": metrics or {},
        **({"release": {k: release[k] for k in ("seed", "sha256", "date", "params")
                        if k in release}} if release else {}),
    }
