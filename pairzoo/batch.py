"""Many pairs at once: an `.npy` batch, a CSV of image-pair paths, or a folder of images.

    import pairzoo
    answers = pairzoo.predict_pairs("siamese_vgg_aug", "pairs.npy")    # list of Answer
    answers = pairzoo.predict_pairs("siamese_vgg_aug", array)          # (N, 2, 14, 14) pixels
    [a.answer for a in answers]                                         # "<=" or ">"

What `pairs` may be (pixels prepared as pairzoo.interface.PREPROCESSING says):
- a numpy array or `.npy` file: (N, 2, 14, 14) raw 0-255 pixels, or (N, 2, 28, 28) MNIST-size
  digits (pooled 2x2 as the training pairs are); one pair may drop the N;
- a `.csv` file with columns `first,second`: image paths, relative to the CSV's folder;
- a folder of PNG/JPEG digits: sorted by name and paired in order (the 1st with the 2nd, the
  3rd with the 4th, ...).
Images are read as `pairzoo predict` reads them (`invert=True`: dark digits on light paper).
The model is loaded once and runs the whole batch in one call.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from pairzoo.errors import PairzooError
from pairzoo.interface import PAIR_SHAPE, SOURCE_SIZE
from pairzoo.predict import IMAGE_SUFFIXES, Answer, answer_for, load_digit_image, load_runner_for

CSV_COLUMNS = ("first", "second")


def pairs_array(array: np.ndarray, where: str = "the array") -> np.ndarray:
    """(N, 2, 14, 14) or (N, 2, 28, 28) pixels (or one pair without N) -> (N, 2, 14, 14)
    float32."""
    from pairzoo.data.pairs import downsample

    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number):
        raise PairzooError(f"{where} holds {array.dtype} values; expected pixel numbers")
    if array.ndim == 3:
        array = array[None]
    if array.ndim == 4 and array.shape[1:] == (2, *SOURCE_SIZE):
        array = downsample(array.reshape(-1, *SOURCE_SIZE)).reshape(-1, *PAIR_SHAPE)
    if array.ndim != 4 or array.shape[1:] != PAIR_SHAPE or len(array) == 0:
        raise PairzooError(f"{where} has shape {array.shape}; pairs are (N, 2, 14, 14) raw "
                           "0-255 pixels, or (N, 2, 28, 28) MNIST-size digits")
    if not np.isfinite(array).all():
        raise PairzooError(f"{where} holds NaN or infinite pixels")
    return array.astype(np.float32)


def _image_pairs(paths: list[tuple[Path, Path]], invert: bool) -> np.ndarray:
    return np.stack([np.stack([load_digit_image(a, invert), load_digit_image(b, invert)])
                     for a, b in paths])


def read_pairs(source: str | Path, invert: bool = False) -> tuple[np.ndarray, list[str]]:
    """(pairs (N, 2, 14, 14) float32, a name for each pair) from a `.npy` file, a CSV of
    image pairs or a folder of images."""
    path = Path(source)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images or len(images) % 2:
            raise PairzooError(f"{path} holds {len(images)} PNG/JPEG images; a folder of pairs "
                               "holds an even number (sorted by name, paired in order)")
        paths = list(zip(images[::2], images[1::2], strict=True))
        return _image_pairs(paths, invert), [f"{a.name} {b.name}" for a, b in paths]
    if not path.is_file():
        raise PairzooError(f"no pairs at {path}: give an .npy batch, a .csv of image pairs or "
                           "a folder of images")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise PairzooError(f"cannot read {path} as a .npy array ({e})") from None
        pairs = pairs_array(array, str(path))
        return pairs, [str(i) for i in range(len(pairs))]
    if path.suffix.lower() == ".csv":
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise PairzooError(f"cannot read {path} as CSV ({e})") from None
        if not rows or any(column not in rows[0] for column in CSV_COLUMNS):
            raise PairzooError(f"{path} needs a header with columns {','.join(CSV_COLUMNS)} "
                               "and one row per pair of image paths")
        paths = [(path.parent / row["first"], path.parent / row["second"]) for row in rows]
        return _image_pairs(paths, invert), [f"{row['first']} {row['second']}" for row in rows]
    raise PairzooError(f"{path}: pairs come as an .npy batch, a .csv of image pairs or a folder")


def predict_pairs(model: str | Path, pairs: np.ndarray | str | Path,
                  invert: bool = False) -> list[Answer]:
    """One Answer per pair: `model` a zoo name (its release, on LiteRT when installed), a run
    folder, .keras, SavedModel, .tflite or .onnx; `pairs` an array or what `read_pairs`
    takes. The inputs are read first (cheap errors first), then the model, once."""
    array = (pairs_array(pairs) if isinstance(pairs, np.ndarray)
             else read_pairs(pairs, invert)[0])
    runner, about = load_runner_for(model)
    outputs = runner(array)
    return [dataclasses.replace(
        answer_for(outputs, i, decision=about.get("compare_is_decision", False),
                   digits_trained=about.get("digits_trained", True)),
        model=about.get("describe", str(model))) for i in range(len(array))]
