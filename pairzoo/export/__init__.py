"""Export a trained model for apps and devices: `.keras`, TensorFlow SavedModel, TFLite.

    export_model("runs/siamese_fullyconv/20260101-120000-seed0", "tflite", quantize="int8")
    export_model("siamese_fullyconv", "savedmodel")     # the newest run of that zoo entry

Every format has the same interface: one input `pair`, (N, 2, 14, 14) raw 0-255 pixels, and the
outputs `compare` (N, 1) = P(first <= second) plus, for siamese models, `digit_a` and `digit_b`
(N, 10) class probabilities, under the signature `serving_default`. SavedModels and TFLite files
need neither pairzoo nor Keras to run: `tf.saved_model.load` or `ai_edge_litert` is enough.

An export is written next to its destination under a hidden name and renamed into place only
once complete, so a failed export leaves nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pairzoo.errors import PairzooError
from pairzoo.registry import list_models

FORMATS = ("keras", "savedmodel", "tflite")
QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "pair"
PAIR_SHAPE = (2, 14, 14)
EXPORT_ROOT = Path("saved_models")
RUNS_ROOT = Path("runs")
# int8 calibration pairs: TFLite's guide asks for a few hundred; 1,000 (a whole default training
# set) cost ~1 s more than 200 and brought siamese_resnet's int8 test error back within 0.5
# points of float (0.7 above it with 200)
CALIBRATION_PAIRS = 1000
# A layer whose int8 RMSE exceeds 0.7 of its quantization step stays in float: the threshold of
# TensorFlow's quantization-debugger guide ("selective quantization").
NOISY_LAYER_LIMIT = 0.7


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds."""

    path: Path
    format: str
    quantize: str
    size_bytes: int
    float_layers: list[str] = field(default_factory=list)  # int8: layers kept in float


# --- which model --------------------------------------------------------------------------


def resolve_source(run_or_name: str | Path) -> Path:
    """A run folder, a `.keras` file, or a zoo name (its newest run under runs/NAME/)."""
    path = Path(run_or_name)
    if path.exists():
        return path
    name = str(run_or_name)
    if name not in list_models():
        raise PairzooError(f"{name} is neither a run folder, a .keras file nor a zoo model name")
    runs = sorted(run for run in (RUNS_ROOT / name).glob("*") if (run / "model.keras").is_file())
    if not runs:
        raise PairzooError(f"no trained run of {name} under {RUNS_ROOT / name}; train one first "
                           f"(pairzoo train {name}) or give a run folder")
    return runs[-1]  # run folders are named TIME-seedS, so the last sorts newest


def _run_label(source: Path) -> str:
    """The run folder's name (20260101-120000-seed0), or a bare model file's stem."""
    if source.is_dir():
        return source.name
    return source.parent.name if source.name == "model.keras" else source.stem


SUFFIXES = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite"}  # a SavedModel is a folder


def default_out(source: Path, model_name: str, fmt: str, quantize: str) -> Path:
    """saved_models/NAME/RUN[-QUANTIZE][.keras|.tflite]."""
    label = _run_label(source) + ("" if quantize == "none" else f"-{quantize}")
    return EXPORT_ROOT / model_name / f"{label}{SUFFIXES[fmt]}"


def check_out(out: Path, fmt: str) -> None:
    """Keras saves only to a .keras name, and `pairzoo predict` tells formats by suffix."""
    wrong_folder = fmt == "savedmodel" and out.suffix in (".keras", ".tflite")
    if wrong_folder or (SUFFIXES[fmt] and out.suffix != SUFFIXES[fmt]):
        want = "a folder name" if fmt == "savedmodel" else f"a name ending in {SUFFIXES[fmt]}"
        raise PairzooError(f"--out {out}: a {fmt} export needs {want}")


# --- writing ------------------------------------------------------------------------------


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yields a hidden sibling path to write; renames it to `out` only if the block succeeds.

    The staging name keeps `out`'s suffix, since Keras insists on saving to a `.keras` name.
    """
    if out.exists():
        raise PairzooError(f"{out} already exists; remove it or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")
    _remove(staging)
    try:
        yield staging
        os.replace(staging, out)
    finally:
        _remove(staging)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --- SavedModel ---------------------------------------------------------------------------


def _all_layers(model):
    """Every layer, including those inside the tower sub-models."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


@contextlib.contextmanager
def unrolled_rnns(model):
    """Trace recurrent layers unrolled (their 14 row steps are static).

    TFLite lowers an RNN's while-loop only with a static batch size; unrolled, the same
    arithmetic takes any batch. Restored afterwards, so training keeps the compact loop.
    """
    import keras

    rnns = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.RNN)]
    previous = [rnn.unroll for rnn in rnns]
    for rnn in rnns:
        rnn.unroll = True
    try:
        yield
    finally:
        for rnn, unroll in zip(rnns, previous, strict=True):
            rnn.unroll = unroll


def write_saved_model(model, path: Path) -> None:
    """A SavedModel whose `serving_default` takes `pair` and returns the model's named outputs.

    Written through `ExportArchive` rather than `model.export`, whose endpoint calls the model
    without `training`: layers that default to training=True (Keras's random augmentation
    layers) then augment at inference, and the served answers become random. The signature's
    input is named after the input spec, its outputs after the model's output dict keys;
    `check_signature` verifies exactly those names.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise PairzooError("SavedModel and TFLite export need the TensorFlow backend; "
                           "run with KERAS_BACKEND=tensorflow")

    def serve(pair):
        return model(pair, training=False)

    spec = keras.InputSpec(shape=(None, *PAIR_SHAPE), dtype="float32", name=INPUT_NAME)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[spec])  # also serving_default
    with unrolled_rnns(model):  # the endpoint is traced when written
        archive.write_out(str(path), verbose=False)
    check_signature(path, list(model.output_names))


def signature_names(path: Path) -> tuple[list[str], list[str]]:
    """(input names, output names) of a SavedModel's serving_default signature."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures[SIGNATURE_KEY]
    _, inputs = signature.structured_input_signature
    return sorted(inputs), sorted(signature.structured_outputs)


def check_signature(path: Path, outputs: list[str]) -> None:
    """Apps read results by name: fail loudly if the written signature's names drifted."""
    inputs, written = signature_names(path)
    if inputs != [INPUT_NAME] or written != sorted(outputs):
        raise RuntimeError(f"SavedModel signature has inputs {inputs} and outputs {written}; "
                           f"expected [{INPUT_NAME!r}] and {sorted(outputs)}")


# --- TFLite -------------------------------------------------------------------------------


def _converter(saved_model: Path, quantize: str, calibration: np.ndarray | None):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    # builtin ops only: ai-edge-litert has no Flex delegate to run Select TF ops
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        # float32 in and out, int8 inside: the same signature as the float model
        converter.representative_dataset = _calibration_samples(calibration)
    return converter


def _calibration_samples(pairs: np.ndarray):
    def samples():
        for pair in pairs:
            yield [pair[None].astype(np.float32)]  # one (1, 2, 14, 14) input per sample

    return samples


def _noisy_layers(debugger) -> list[str]:
    """Tensors whose int8 RMSE is more than NOISY_LAYER_LIMIT quantization steps."""
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    return [row["tensor_name"] for row in csv.DictReader(dump)
            if float(row["scale"]) > 0
            and np.sqrt(float(row["mean_squared_error"])) / float(row["scale"]) > NOISY_LAYER_LIMIT]


def _int8_flatbuffer(saved_model: Path, calibration: np.ndarray) -> tuple[bytes, list[str]]:
    """int8 with float32 interface; layers int8 cannot hold stay float (selective quantization).

    A batch norm after a ReLU cannot be folded into a convolution, and its per-channel scales
    can span four orders of magnitude (siamese_fullyconv's): one int8 scale for the whole tensor
    then wipes out the small channels and the test error jumps to chance. TensorFlow's
    quantization debugger measures each layer's error on the calibration pairs; those above
    the limit are kept in float.
    """
    import tensorflow as tf

    with warnings.catch_warnings():
        # the debugger runs its models on tf.lite.Interpreter, which warns it is deprecated
        warnings.simplefilter("ignore", UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=_converter(saved_model, "int8", calibration),
            debug_dataset=_calibration_samples(calibration))
        try:
            debugger.run()
        except RuntimeError as e:  # its message runs on into the debug ops' statistics
            if "XNNPACK" not in str(e):
                raise
            raise RuntimeError("XNNPACK, TFLite's default CPU delegate, refuses the int8 "
                               "model's scales") from e
        noisy = _noisy_layers(debugger)
        if noisy:
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=noisy)
        return debugger.get_nondebug_quantized_model(), noisy


def tflite_ops(flatbuffer: bytes) -> set[str]:
    """The operators a TFLite model uses: builtin names (CONV_2D), custom ops by their code
    (Flex ops are custom ops named Flex<TF op>)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    return {code.customCode.decode() if code.customCode
            else flatbuffer_utils.opcode_to_name(model, i)
            for i, code in enumerate(model.operatorCodes)}


def non_builtin_ops(flatbuffer: bytes) -> set[str]:
    """Ops the plain TFLite runtime cannot run: Flex and other custom ops."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    return {code.customCode.decode() for code in model.operatorCodes if code.customCode}


def convert_to_tflite(model, quantize: str = "none", calibration: np.ndarray | None = None
                      ) -> tuple[bytes, list[str]]:
    """(TFLite flatbuffer, layers kept in float) converted through a SavedModel, since
    `TFLiteConverter.from_keras_model` has broken across Keras 3 versions."""
    if quantize not in QUANTIZATIONS:
        raise PairzooError(f"unknown quantization {quantize!r}; use {', '.join(QUANTIZATIONS)}")
    if quantize == "int8" and calibration is None:
        raise PairzooError("int8 quantization needs calibration pairs")
    hint = "" if quantize == "none" else "; try another --quantize"
    with tempfile.TemporaryDirectory(prefix="pairzoo-export-") as tmp:
        saved_model = Path(tmp) / "saved_model"
        write_saved_model(model, saved_model)
        try:
            if quantize == "int8":
                flatbuffer, float_layers = _int8_flatbuffer(saved_model, calibration)
            else:
                flatbuffer, float_layers = _converter(saved_model, quantize, None).convert(), []
        except Exception as e:  # ConverterError (pages of MLIR), or XNNPACK in the debugger
            raise PairzooError(f"cannot convert {model.name} to TFLite ({quantize}): "
                               f"{_first_error_line(e)}{hint}") from e
    custom = non_builtin_ops(flatbuffer)
    if custom:
        raise PairzooError(f"{model.name} converted with non-builtin TFLite ops "
                           f"{sorted(custom)}; ai-edge-litert cannot run them")
    _check_it_runs(flatbuffer, model.name, quantize, hint)
    return flatbuffer, float_layers


def _check_it_runs(flatbuffer: bytes, name: str, quantize: str, hint: str) -> None:
    """Run two pairs where devices run the file: ai-edge-litert with its default XNNPACK
    delegate. XNNPACK refuses some int8 scale combinations (a half-diverged
    siamese_convnet_joint_loss run, weights up to 3.6e3, had them), and such a file would
    convert cleanly and then fail on every device."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the runtime is an extra (pairzoo[litert]): nothing to check with
        return
    pairs = np.full((2, *PAIR_SHAPE), 128.0, dtype=np.float32)
    try:
        Interpreter(model_content=flatbuffer).get_signature_runner(SIGNATURE_KEY)(pair=pairs)
    except (RuntimeError, ValueError) as e:
        raise PairzooError(f"the {quantize} TFLite model of {name} does not run under "
                           f"ai-edge-litert: {_first_error_line(e)}{hint}") from e


def _first_error_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if "error:" in line]
    return (lines or str(error).strip().splitlines() or [type(error).__name__])[0][:300]


# --- calibration data ---------------------------------------------------------------------


def calibration_pairs(source: Path, n: int = CALIBRATION_PAIRS) -> np.ndarray:
    """The first `n` training pairs of the run (its seed and train data), from config.json;
    a bare model file without one gets the embedded digits' seed-0 pairs."""
    from pairzoo.data import load_pairs
    from pairzoo.runs import run_config

    config = run_config(source)
    n_train = config.get("train", {}).get("n_train", n)
    data = config.get("data", {})
    train, _ = load_pairs(min(n, n_train), 1, config.get("seed", 0),
                          data.get("train_data", "embedded"))
    return train.pairs


# --- the entry point ----------------------------------------------------------------------


def export_model(
    run_or_name: str | Path,
    fmt: str = "savedmodel",
    quantize: str = "none",
    out: str | Path | None = None,
    calibration: np.ndarray | None = None,
) -> ExportResult:
    """Export a run folder, `.keras` file or zoo name (its newest run) to `fmt`.

    `quantize` applies to TFLite only. int8 calibrates on `calibration` pairs, by default the
    run's own first CALIBRATION_PAIRS training pairs.
    """
    if fmt not in FORMATS:
        raise PairzooError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise PairzooError(f"unknown quantization {quantize!r}; use {', '.join(QUANTIZATIONS)}")
    if quantize != "none" and fmt != "tflite":
        raise PairzooError(f"--quantize {quantize} applies to --format tflite only")
    from pairzoo.runs import load_model

    source = resolve_source(run_or_name)
    model = load_model(source)
    out = Path(out) if out is not None else default_out(source, model.name, fmt, quantize)
    check_out(out, fmt)
    if quantize == "int8" and calibration is None:
        calibration = calibration_pairs(source)
    float_layers: list[str] = []
    with staged(out) as staging:
        if fmt == "keras":
            model.save(staging)
        elif fmt == "savedmodel":
            write_saved_model(model, staging)
        else:
            flatbuffer, float_layers = convert_to_tflite(model, quantize, calibration)
            staging.write_bytes(flatbuffer)
    return ExportResult(out, fmt, quantize, _size(out), float_layers)
