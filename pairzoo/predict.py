"""Predict from files: digit images or a `.npy` pair in, any exported model format out.

    pair = load_pair("a.png", "b.png")                # (1, 2, 14, 14) raw 0-255 pixels
    runner = load_runner("saved_models/siamese_fullyconv/RUN.tflite")
    answer = answer_for(runner(pair))                 # compare, digit guesses, by output name

Images of any size become MNIST-like digits: grayscale, fitted into 28x28 with their aspect
ratio kept (padded with background), then the pair protocol's 2x2 average pooling to 14x14.
MNIST digits are white on black; `invert=True` takes black-on-white drawings.

A `.tflite` model runs on `ai-edge-litert` alone and an `.onnx` one on `onnxruntime`, so
predicting with either never imports TensorFlow; a SavedModel needs TensorFlow, a `.keras` file
or a zoo name Keras and pairzoo's layers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pairzoo.errors import PairzooError
from pairzoo.interface import (
    INPUT_NAME,
    PAIR_SHAPE,
    SIGNATURE_KEY,
    digit_outputs_trained,
    reads_less_equal,
)

MNIST_SIZE = (28, 28)
# The most pixels a digit picture may have: 4096 x 4096 (16.8 megapixels) takes a 12-megapixel
# phone photo or a 300 dpi scan of a page, and decodes in at most 64 MB (RGBA); the picture is
# shrunk to 28 x 28 anyway. Bigger files are refused before decoding (decompression bombs).
MAX_IMAGE_PIXELS = 4096 * 4096
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


# --- inputs -------------------------------------------------------------------------------


def load_digit_image(path: str | Path, invert: bool = False) -> np.ndarray:
    """One digit picture -> (14, 14) float32, 0-255, white on black."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from pairzoo.data.pairs import downsample

    path = Path(path)
    if not path.is_file():
        raise PairzooError(f"no image at {path}")
    try:
        # PIL warns above ~89 megapixels and refuses above ~179; both are far more than a
        # digit needs, so its warning becomes our refusal (one line, no PIL text)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header: the size, no pixels yet
                _check_pixels(path, image.size)
                gray = ImageOps.grayscale(image)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise PairzooError(f"{path} is too large an image to read (over "
                           f"{Image.MAX_IMAGE_PIXELS:,} pixels); a digit needs at most "
                           f"{MAX_IMAGE_PIXELS:,}: downscale it") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise PairzooError(f"cannot read {path} as a PNG or JPEG image ({e})") from None
    if invert:
        gray = ImageOps.invert(gray)
    # pad with black (MNIST's background) so a non-square picture keeps its aspect ratio
    square = ImageOps.pad(gray, MNIST_SIZE, method=Image.Resampling.BOX, color=0)
    return downsample(np.asarray(square, dtype=np.float32)[None])[0]


def _check_pixels(path: Path, size: tuple[int, int]) -> None:
    """Refuse before decoding an image larger than MAX_IMAGE_PIXELS: a 27 kB PNG can declare
    15000 x 15000 pixels, which would take gigabytes to decode only to be shrunk to 28 x 28."""
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise PairzooError(f"{path} is {width:,} x {height:,} pixels ({width * height / 1e6:,.0f} "
                           f"megapixels); a digit needs at most {MAX_IMAGE_PIXELS / 1e6:.1f}: "
                           "crop or downscale it")


def load_npy_pair(path: str | Path) -> np.ndarray:
    """A `.npy` pair of raw 0-255 pixels: (2, 14, 14), (1, 2, 14, 14), or (2, 28, 28) MNIST-size
    digits (pooled to 14x14 as the pair protocol does) -> (1, 2, 14, 14) float32."""
    from pairzoo.data.pairs import downsample

    path = Path(path)
    if not path.is_file():
        raise PairzooError(f"no .npy file at {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise PairzooError(f"cannot read {path} as a .npy array ({e})") from None
    if not np.issubdtype(array.dtype, np.number):
        raise PairzooError(f"{path} holds {array.dtype} values; expected pixel numbers")
    shape = array.shape
    if shape == (2, *MNIST_SIZE):
        array = downsample(array)
    if array.shape == PAIR_SHAPE:
        array = array[None]
    if array.shape != (1, *PAIR_SHAPE):
        raise PairzooError(f"{path} has shape {shape}; a pair is (2, 14, 14), (1, 2, 14, 14) "
                           "or (2, 28, 28)")
    if not np.isfinite(array).all():
        raise PairzooError(f"{path} holds NaN or infinite pixels")
    return array.astype(np.float32)


def load_pair(first: str | Path, second: str | Path | None = None,
              invert: bool = False) -> np.ndarray:
    """Two digit images, or one `.npy` pair -> (1, 2, 14, 14) float32 raw pixels."""
    first = Path(first)
    if second is None:
        if first.suffix.lower() != ".npy":
            raise PairzooError(f"{first}: give two digit images, or one .npy pair")
        return load_npy_pair(first)
    for path in (first, Path(second)):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise PairzooError(f"{path}: expected a PNG or JPEG image (or one .npy pair)")
    digits = [load_digit_image(path, invert) for path in (first, second)]
    return np.stack(digits)[None]


# --- models -------------------------------------------------------------------------------


def model_format(path: str | Path) -> str:
    """keras (a .keras file or a run folder), savedmodel (a folder with saved_model.pb), tflite
    or onnx, from what is at `path`."""
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        if (path / "model.keras").is_file():
            return "keras"
    elif path.is_file() and path.suffix in (".keras", ".tflite", ".onnx"):
        return path.suffix[1:]
    raise PairzooError(f"no model at {path}: give a zoo name, a .keras file or run folder, a "
                       "SavedModel folder, or a .tflite or .onnx file")


def load_runner(path: str | Path) -> Runner:
    """A function (N, 2, 14, 14) pairs -> {output name: array} for any exported format."""
    loaders = {"keras": _keras_runner, "savedmodel": _savedmodel_runner,
               "tflite": _tflite_runner, "onnx": _onnx_runner}
    return loaders[model_format(path)](Path(path))


def load_runner_for(model: str | Path) -> tuple[Runner, dict]:
    """(runner, what is known about the model: `describe`, `compare_is_decision`) for a zoo
    name (its release weights) or anything `load_runner` takes. Exports carry their labels
    (a .tflite/.onnx file's FILE.json sidecar, a SavedModel's assets/pairzoo.json)."""
    path = Path(model)
    if not path.exists() or model_format(path) == "keras":
        from pairzoo.references import resolve_model

        ref = resolve_model(model)
        if ref.kind == "release":  # LiteRT where it is installed: no TensorFlow to import
            from pairzoo.converted import release_tflite

            converted = release_tflite(ref.name)
            if converted is not None:
                return load_runner(converted), _about(ref, ref.spec.preset.model, " (on LiteRT)")
        loaded = ref.load()
        # a bare .keras file has no run config: its model carries its own
        config = ref.spec.preset.model if ref.spec else getattr(loaded, "model_config", None)
        return _keras_model_runner(loaded), _about(ref, config)
    labels = (path / "assets" / "pairzoo.json" if path.is_dir()
              else path.with_name(path.name + ".json"))
    about = {}
    if labels.is_file():
        with contextlib.suppress(ValueError, OSError):
            facts = json.loads(labels.read_text(encoding="utf-8"))
            about = {"describe": f"{path} ({facts.get('origin', facts.get('model', ''))})",
                     "compare_is_decision": bool(facts.get("compare_is_decision")),
                     "digits_trained": facts.get("digit_outputs_trained", True) is not False}
    return load_runner(path), about


def _about(ref, config, how: str = "") -> dict:
    """What `answer_for` and the answer's `model` line need to know of a run or release."""
    return {"describe": ref.describe() + how,
            "compare_is_decision": bool(config and config.head == "argmax"),
            "digits_trained": config is None or digit_outputs_trained(config.head,
                                                                       config.aux_weight)}


def _keras_runner(path: Path) -> Runner:
    from pairzoo.runs import load_model

    return _keras_model_runner(load_model(path, compile=False))


def _keras_model_runner(model) -> Runner:
    def run(pairs):
        return {name: np.asarray(value) for name, value in model(pairs, training=False).items()}

    return run


def _onnx_runner(path: Path) -> Runner:
    try:
        import onnxruntime
    except ImportError:
        raise PairzooError("running .onnx files needs onnxruntime: "
                           "pip install 'pairzoo[onnx]'") from None
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf errors
        raise PairzooError(f"cannot load {path} as an ONNX model "
                           f"({str(e).strip().splitlines()[0][:200]}); re-export it") from None
    names = [output.name for output in session.get_outputs()]

    def run(pairs):
        values = session.run(None, {INPUT_NAME: np.ascontiguousarray(pairs, dtype=np.float32)})
        return dict(zip(names, values, strict=True))

    return run


def _savedmodel_runner(path: Path) -> Runner:
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(path)).signatures[SIGNATURE_KEY]
    except Exception as e:  # a corrupt protobuf, missing variables, no such signature, ...
        raise PairzooError(f"cannot load the SavedModel at {path} ({type(e).__name__}); "
                           "re-export it") from None

    def run(pairs):
        outputs = signature(**{INPUT_NAME: tf.constant(pairs, dtype=tf.float32)})
        return {name: value.numpy() for name, value in outputs.items()}

    return run


def _tflite_runner(path: Path) -> Runner:
    from pairzoo.litert import signature_runner

    try:
        return signature_runner(model_path=str(path))
    except ImportError:
        raise PairzooError("running .tflite files needs ai-edge-litert: "
                           "pip install 'pairzoo[litert]'") from None
    except (ValueError, RuntimeError) as e:
        raise PairzooError(f"cannot load {path} as a TFLite model "
                           f"({str(e).strip().splitlines()[0]}); re-export it") from None


# --- the answer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One pair's prediction: `answer` is "<=" or ">", `probability` that answer's probability
    (1.0 for a `decision`: a hard-coded argmax head's 0/1 output is no probability); digit
    guesses are None for two-channel models (they have no digit outputs) and for models whose
    digit outputs are untrained (`digits_trained` False: no digit loss, aux weight 0)."""

    answer: str
    probability: float
    p_less_equal: float
    decision: bool = False
    digits_trained: bool = True
    digit_a: int | None = None
    digit_a_probability: float | None = None
    digit_b: int | None = None
    digit_b_probability: float | None = None
    model: str = ""  # which weights answered, and how good they are measured to be

    def to_dict(self) -> dict:
        return asdict(self)


def answer_for(outputs: dict[str, np.ndarray], index: int = 0,
               decision: bool = False, digits_trained: bool = True) -> Answer:
    """Read pair `index` of a model's outputs by name; `decision`: its `compare` output is a
    0/1 decision (a hard-coded argmax head); `digits_trained` False: its digit outputs learned
    nothing (no digit loss), so they are not read as guesses."""
    p = float(outputs["compare"][index, 0])
    digits = {"digits_trained": digits_trained}
    for side in ("digit_a", "digit_b"):
        if side in outputs and digits_trained:
            probs = outputs[side][index]
            guess = int(np.argmax(probs))
            digits |= {side: guess, f"{side}_probability": float(probs[guess])}
    if reads_less_equal(p):
        return Answer("<=", p, p, decision, **digits)
    return Answer(">", 1 - p, p, decision, **digits)


def predict_files(model: str | Path, first: str | Path, second: str | Path | None = None,
                  invert: bool = False) -> Answer:
    """The whole `pairzoo predict`: read the inputs first (cheap errors first), then the model
    (a zoo name means its release weights)."""
    pair = load_pair(first, second, invert)
    runner, about = load_runner_for(model)
    answer = answer_for(runner(pair), decision=about.get("compare_is_decision", False),
                        digits_trained=about.get("digits_trained", True))
    return dataclasses.replace(answer, model=about.get("describe", str(model)))
