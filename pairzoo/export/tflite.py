"""TFLite export: builtin ops only (ai-edge-litert has no Flex delegate), float, dynamic-range,
float16 or int8 with selective quantization; checked to run where devices run it."""

from __future__ import annotations

import csv
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np

from pairzoo.errors import PairzooError
from pairzoo.export.savedmodel import write_saved_model
from pairzoo.interface import PAIR_SHAPE

QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
# A layer whose int8 RMSE exceeds 0.7 of its quantization step stays in float: the threshold of
# TensorFlow's quantization-debugger guide ("selective quantization").
NOISY_LAYER_LIMIT = 0.7
CALIBRATOR_CHATTER = "fully_quantize: "


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

    from pairzoo._startup import stderr_without
    from pairzoo.litert import RUNTIME_CHATTER

    # the calibrator's C++ prints "fully_quantize: 0, inference_type: 6, ..." on stderr for each
    # quantized conversion (the debugger converts up to three times), and the debugger's
    # interpreters the XNNPACK line: neither says anything to the user
    with warnings.catch_warnings(), stderr_without((CALIBRATOR_CHATTER, *RUNTIME_CHATTER)):
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
    from pairzoo.litert import signature_runner

    pairs = np.full((2, *PAIR_SHAPE), 128.0, dtype=np.float32)
    try:
        signature_runner(model_content=flatbuffer)(pairs)
    except ImportError:  # the runtime is an extra (pairzoo[litert]): nothing to check with
        return
    except (RuntimeError, ValueError) as e:
        raise PairzooError(f"the {quantize} TFLite model of {name} does not run under "
                           f"ai-edge-litert: {_first_error_line(e)}{hint}") from e


def _first_error_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if "error:" in line]
    return (lines or str(error).strip().splitlines() or [type(error).__name__])[0][:300]
