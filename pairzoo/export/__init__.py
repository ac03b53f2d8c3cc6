"""Export a trained model for apps and devices: `.keras`, TensorFlow SavedModel (optionally in
TF Serving's numbered layout), TFLite and ONNX.

    export_model("siamese_vgg_aug", "tflite", quantize="int8")   # a zoo name: release weights
    export_model("runs/siamese_fullyconv/20260101-120000-seed0", "onnx")

Every format has the same interface (pairzoo.interface): one input `pair`, (N, 2, 14, 14) raw
0-255 pixels, and the outputs `compare` (N, 1) = P(first <= second) plus, for siamese models,
`digit_a` and `digit_b` (N, 10) class probabilities, under the signature `serving_default`.
SavedModels, TFLite and ONNX files need neither pairzoo nor Keras to run.

Every export says what it is: its labels, input spec, output meanings, measured metrics and,
for release weights, the model card travel with it (a SavedModel's assets/, the ONNX file's
metadata, and a `FILE.json` sidecar beside a .tflite or .onnx file).

An export is written next to its destination under a hidden name and renamed into place only
once complete, so a failed export leaves nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pairzoo.destinations import check_writable
from pairzoo.errors import PairzooError
from pairzoo.export.onnx import write_onnx
from pairzoo.export.savedmodel import (
    add_assets,
    next_serving_version,
    signature_names,
    unrolled_rnns,
    write_saved_model,
)
from pairzoo.export.tflite import QUANTIZATIONS, convert_to_tflite, non_builtin_ops, tflite_ops
from pairzoo.references import ModelRef, resolve_model

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
EXPORT_ROOT = Path("exports")
# int8 calibration pairs: TFLite's guide asks for a few hundred; 1,000 (a whole default training
# set) cost ~1 s more than 200 and brought siamese_resnet's int8 test error back within 0.5
# points of float (0.7 above it with 200)
CALIBRATION_PAIRS = 1000
SUFFIXES = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}

__all__ = ["CALIBRATION_PAIRS", "EXPORT_ROOT", "FORMATS", "QUANTIZATIONS", "ExportResult",
           "convert_to_tflite", "export_model", "non_builtin_ops", "signature_names",
           "tflite_ops", "unrolled_rnns", "write_saved_model"]


@dataclass(frozen=True)
class ExportResult:
    """Where an export went, what it holds, and which weights it came from."""

    path: Path
    format: str
    quantize: str
    size_bytes: int
    source: str = ""  # ModelRef.describe(): which weights, how good
    float_layers: list[str] = field(default_factory=list)  # int8: layers kept in float
    sidecar: Path | None = None


# --- where ---------------------------------------------------------------------------------


def _label(ref: ModelRef) -> str:
    """'release', a run folder's name (20260101-120000-seed0), or a bare model file's stem."""
    if ref.kind == "release":
        return "release"
    if ref.path.is_dir():
        return ref.path.name
    return ref.path.parent.name if ref.path.name == "model.keras" else ref.path.stem


def default_out(ref: ModelRef, fmt: str, quantize: str, serving: bool = False) -> Path:
    """exports/NAME/LABEL[-QUANTIZE][.keras|.tflite|.onnx]; for TF Serving, the model's base
    folder exports/serving/NAME (the version folder goes below it)."""
    if serving:
        return EXPORT_ROOT / "serving" / ref.name
    label = _label(ref) + ("" if quantize == "none" else f"-{quantize}")
    return EXPORT_ROOT / ref.name / f"{label}{SUFFIXES[fmt]}"


def check_out(out: Path, fmt: str) -> None:
    """Keras saves only to a .keras name, and `pairzoo predict` tells formats by suffix."""
    wrong_folder = fmt == "savedmodel" and out.suffix in (".keras", ".tflite", ".onnx")
    if wrong_folder or (SUFFIXES[fmt] and out.suffix != SUFFIXES[fmt]):
        want = "a folder name" if fmt == "savedmodel" else f"a name ending in {SUFFIXES[fmt]}"
        raise PairzooError(f"--out {out}: a {fmt} export needs {want}")


def sidecar_path(out: Path) -> Path:
    """model.tflite -> model.tflite.json (one per file, so a .tflite and an .onnx of the same
    stem keep their own)."""
    return out.with_name(out.name + ".json")


# --- writing ------------------------------------------------------------------------------


@contextlib.contextmanager
def staged(*outs: Path) -> Iterator[list[Path]]:
    """Yields hidden sibling paths to write; renames them to `outs` only if the block succeeds.

    Staging names keep each destination's suffix, since Keras insists on a `.keras` name."""
    for out in outs:
        if out.exists():
            raise PairzooError(f"{out} already exists; remove it or choose another --out")
    made = _missing_folders(outs[0].parent)  # all outs are siblings
    stagings = [out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}") for out in outs]
    done = False
    try:
        outs[0].parent.mkdir(parents=True, exist_ok=True)
        for staging in stagings:
            _remove(staging)
        yield stagings
        for staging, out in zip(stagings, outs, strict=True):
            os.replace(staging, out)
        done = True
    finally:
        for staging in stagings:
            _remove(staging)
        if not done:  # a failed export leaves no folder it made (exports/NAME/ before)
            for folder in made:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty: never what another export put there


def _missing_folders(folder: Path) -> list[Path]:
    """The folders mkdir(parents=True) would make for `folder`, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def calibration_pairs(ref: ModelRef, n: int = CALIBRATION_PAIRS) -> np.ndarray:
    """The first `n` training pairs of the run (or release) the model comes from; a bare
    model file without a config.json gets the default source's seed-0 pairs."""
    from pairzoo.data import DEFAULT_SOURCE, load_train_pairs

    if ref.spec is None:
        return load_train_pairs(n, 0, DEFAULT_SOURCE).pairs
    return ref.spec.train_pairs(n).pairs


def _metadata(ref: ModelRef, model) -> tuple[dict, str | None]:
    """(labels and facts, the model card for release weights)."""
    from pairzoo.cards import export_metadata

    release, card = None, None
    if ref.kind == "release":
        from pairzoo.zoo import release_dir, release_info

        release = release_info(ref.name)
        card_file = release_dir(ref.name) / "README.md"
        card = card_file.read_text(encoding="utf-8") if card_file.is_file() else None
    config = ref.spec.preset.model if ref.spec else getattr(model, "model_config", None)
    return export_metadata(config, ref.name, ref.metrics, ref.describe(), release), card


# --- the entry point ----------------------------------------------------------------------


def export_destination(ref: ModelRef, fmt: str, quantize: str = "none",
                       out: str | Path | None = None,
                       serving_version: int | None = None) -> Path:
    """Where the export goes, checked before any model is loaded (`pairzoo export` calls this
    before importing TensorFlow): the options fit together, nothing is there yet, and the
    place can be written, with room."""
    if fmt not in FORMATS:
        raise PairzooError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise PairzooError(f"unknown quantization {quantize!r}; use {', '.join(QUANTIZATIONS)}")
    if quantize != "none" and fmt != "tflite":
        raise PairzooError(f"--quantize {quantize} applies to --format tflite only")
    if serving_version is not None and fmt != "savedmodel":
        raise PairzooError("the TF Serving layout (--serving) is a SavedModel layout: use "
                           "--format savedmodel")
    serving = serving_version is not None
    out = Path(out) if out is not None else default_out(ref, fmt, quantize, serving)
    if serving:
        if serving_version < 0:
            raise PairzooError(f"--serving takes a version number >= 1; got {serving_version}")
        out = out / str(serving_version or next_serving_version(out))
    check_out(out, fmt)
    for path in (out, *([sidecar_path(out)] if fmt in ("tflite", "onnx") else [])):
        if path.exists() or path.is_symlink():
            raise PairzooError(f"{path} already exists; remove it or choose another --out")
    return check_writable(out, "an export", "--out")



def export_model(
    run_or_name: str | Path,
    fmt: str = "savedmodel",
    quantize: str = "none",
    out: str | Path | None = None,
    calibration: np.ndarray | None = None,
    serving_version: int | None = None,
) -> ExportResult:
    """Export a zoo entry's release weights, a run folder or a `.keras` file to `fmt`.

    `quantize` applies to TFLite only; int8 calibrates on `calibration` pairs, by default the
    run's own first CALIBRATION_PAIRS training pairs. `serving_version` (SavedModel only)
    writes TF Serving's layout: OUT/<version>/, OUT being the model's base folder; 0 means one
    more than the highest version already there.
    """
    ref = resolve_model(run_or_name)
    out = export_destination(ref, fmt, quantize, out, serving_version)
    model = ref.load()
    if quantize == "int8" and calibration is None:
        calibration = calibration_pairs(ref)
    metadata, card = _metadata(ref, model)
    float_layers: list[str] = []
    sidecar = sidecar_path(out) if fmt in ("tflite", "onnx") else None
    with staged(out, *([sidecar] if sidecar else [])) as stagings:
        staging = stagings[0]
        if fmt == "keras":
            model.save(staging)
        elif fmt == "savedmodel":
            write_saved_model(model, staging)
            add_assets(staging, metadata, card)
        elif fmt == "onnx":
            write_onnx(model, staging, metadata)
        else:
            flatbuffer, float_layers = convert_to_tflite(model, quantize, calibration)
            staging.write_bytes(flatbuffer)
            if quantize != "none":
                metadata["metrics_note"] = (f"metrics measured on the float32 model; {quantize} "
                                            "quantization moves them slightly")
        if sidecar:
            stagings[1].write_text(json.dumps(metadata, indent=2) + "\n")
    return ExportResult(out, fmt, quantize, _size(out), ref.describe(), float_layers, sidecar)
