"""Fault injection, third step (issue 24): full disks, read-only destinations, mirrors that
send too much or nothing, and hostile images.

The rule is test_faults.py's: one line on stderr naming the path and the fix, exit status 2,
nothing written and nothing lost (a snapshot of the test's folder before and after). A full disk
is a fake `os.write`, `shutil.disk_usage` or writer raising ENOSPC; a read-only filesystem is
the write probe's `mkdir` raising EROFS (the tests may run as root, who writes anywhere else).
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from test_faults import (  # noqa: F401  (fresh_sources: autouse, as there)
    assert_refused,
    cli,
    fake_train,
    fresh_sources,
    json_line,
    row,
    warnings_in,
)

import pairzoo.destinations as destinations
from pairzoo.errors import PairzooError
from pairzoo.experiments import runner
from pairzoo.experiments import store as store_module
from pairzoo.experiments.store import ResultsStore

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = ["experiment", "--model", "siamese_argmax", "--runs", "1", "--name", "tiny",
              "--no-plots", "--set", "train.epochs=1"]


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def disk_with_free(monkeypatch, free: int) -> None:
    monkeypatch.setattr(destinations.shutil, "disk_usage",
                        lambda path: SimpleNamespace(total=free, used=0, free=free))


def read_only_probe(monkeypatch, mount: Path) -> None:
    """The write probe's mkdir fails under `mount` as on a read-only mount."""
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if ".pairzoo-write-probe" in self.name and self.is_relative_to(mount):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)


@pytest.fixture
def trained(monkeypatch) -> list:
    """Experiments train with a fake (milliseconds); the list records each run trained."""
    seeds: list = []
    monkeypatch.setattr(runner, "_trainer", lambda train_fn=None: (fake_train(seeds), {}))
    return seeds


# --- the results store on a full disk --------------------------------------------------------


@pytest.mark.parametrize("tail", [b"", b'{"run_id": "torn", "test_er'])
def test_a_row_the_disk_cannot_take_whole_is_cut_back_off(tail, tmp_path, monkeypatch):
    """The disk takes half the row, then nothing: the file is cut back to its old length (a torn
    line a crash left before stays as it was, unterminated), and the error names the store."""
    store = ResultsStore(tmp_path / "runs.jsonl")
    store.append(row("a"))
    store.path.write_bytes(store.path.read_bytes() + tail)
    before = store.path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 1:
            return real_write(fd, data[: len(data) // 2])
        return enospc()

    with monkeypatch.context() as patch, pytest.raises(PairzooError) as info:
        patch.setattr(store_module.os, "write", half_then_full)
        store.append(row("b"))
    assert str(store.path) in str(info.value) and "No space left on device" in str(info.value)
    assert store.path.read_bytes() == before
    store.append(row("c"))  # and the next row, with room again, is whole
    assert [r["run_id"] for r in ResultsStore(store.path).rows()] == ["a", "c"]


def test_an_experiment_checks_room_for_its_store_and_tables_before_training(
        trained, tmp_path, capsys, monkeypatch):
    with monkeypatch.context() as patch:
        disk_with_free(patch, 2 * 2**20)
        assert_refused(tmp_path, capsys,
                       [*EXPERIMENT, "--store", tmp_path / "full" / "runs.jsonl"],
                       "--store", "2,048 kB", "10 MB", tmp_path / "full")
    (tmp_path / "ro").mkdir()
    read_only_probe(monkeypatch, tmp_path / "ro")
    assert_refused(tmp_path, capsys, [*EXPERIMENT, "--store", tmp_path / "runs.jsonl",
                                      "--out", tmp_path / "ro" / "tables"],
                   "--out", "Read-only file system", tmp_path / "ro" / "tables")
    assert not trained  # refused before any run, not after


@pytest.mark.parametrize("failure", ["up front", "while writing"])
def test_results_on_a_full_disk_is_one_line_and_leaves_no_table(failure, tmp_path, capsys,
                                                                 monkeypatch):
    """Before: "internal error: OSError" and a 0-byte CSV. Now the free space is checked first,
    and a table the disk fills under is written aside, so none is left empty or cut."""
    store = tmp_path / "runs.jsonl"
    store.write_bytes(json_line(row("a")) + json_line(row("b", test_error=5.0)))
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "old.csv").write_text("an earlier table\n")
    if failure == "up front":
        disk_with_free(monkeypatch, 4096)
        phrases = ["4 kB", "10 MB", "--out"]
    else:
        def to_csv(self, path, **kwargs):
            Path(path).write_bytes(b"")  # what a full disk leaves: the file made, no bytes
            enospc()

        monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
        phrases = ["No space left on device", "--out"]
    assert_refused(tmp_path, capsys, ["results", store, "--out", tables], tables, *phrases)


# --- what the store path may be ---------------------------------------------------------------


def test_a_file_that_holds_no_row_is_not_taken_for_a_store(tmp_path, capsys):
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n\nnothing here is a run\n")
    assert_refused(tmp_path, capsys, [*EXPERIMENT, "--store", notes, "--dry-run"],
                   notes, "not a results store", "--store")
    torn_first = tmp_path / "runs.jsonl"  # a store whose first row is torn still counts
    torn_first.write_bytes(b'{"run_id": "torn", "te\n' + json_line(row("a")))
    code, _, err = cli(capsys, *EXPERIMENT, "--store", torn_first, "--dry-run")
    assert code == 0 and len(warnings_in(err)) == 1, err


def test_a_resume_over_a_torn_line_warns_once_with_the_total(tmp_path, capsys):
    """A bad line inside and a torn last line: one warning for both, not one now and one more
    when the next append ends the torn line."""
    store = ResultsStore(tmp_path / "runs.jsonl")
    store.append(row("a"))
    store.path.write_bytes(store.path.read_bytes() + b"not json\n" + b'{"run_id": "torn", "t')
    store.refresh()
    store.append(row("b"))
    assert [r["run_id"] for r in store.rows()] == ["a", "b"]
    assert warnings_in(capsys.readouterr().err) == [
        f"pairzoo: warning: 2 unreadable lines skipped in {store.path} (left in the file; "
        "their runs count as not done)"]


def test_reproduce_reads_its_store_once_so_warns_once(tmp_path, capsys):
    """reproduce's tables and its page read the same store: one warning, not one each."""
    store = tmp_path / "runs.jsonl"
    shutil.copyfile(REPO / "results" / "003" / "runs.jsonl", store)
    with open(store, "ab") as f:
        f.write(b"not json\n")
    code, _, err = cli(capsys, "reproduce", "003", "--tables-only", "--no-plots", "--store",
                       store, "--out", tmp_path / "out")
    assert code == 0, err
    assert len(warnings_in(err)) == 1, err


def test_a_run_folder_check_states_the_threshold_it_applies(tmp_path, capsys, monkeypatch):
    """Before: "a run folder needs about 1 MB" on a 2 MB disk, refused at 10 MB."""
    monkeypatch.setattr("pairzoo.training.train", lambda *a, **k: pytest.fail("trained"))
    disk_with_free(monkeypatch, 2 * 2**20)
    line = assert_refused(tmp_path, capsys, ["train", "siamese_argmax", "--epochs", "1"],
                          "2,048 kB", f"{destinations.MIN_FREE_BYTES // 2**20} MB", "--out")
    assert "1 MB" not in line


# --- exports: the destination is checked first --------------------------------------------------

RELEASE = "siamese_small_cnn"  # a small release: loading it is quick


@pytest.mark.parametrize("options, name", [
    (["--format", "keras"], "model.keras"),
    (["--format", "tflite"], "model.tflite"),
    (["--format", "savedmodel"], "model"),
    (["--format", "savedmodel", "--serving"], "serving"),
    (["--format", "onnx"], "model.onnx"),
])
def test_an_export_into_a_read_only_place_is_refused_before_loading(options, name, tmp_path,
                                                                    capsys, monkeypatch):
    """Before: "internal error: OSError: [Errno 30]" after TensorFlow and the model loaded."""
    monkeypatch.setattr("pairzoo.references.ModelRef.load", lambda self: pytest.fail("loaded"))
    (tmp_path / "ro").mkdir()
    read_only_probe(monkeypatch, tmp_path / "ro")
    assert_refused(tmp_path, capsys, ["export", RELEASE, *options, "--out",
                                      tmp_path / "ro" / "exports" / name],
                   "Read-only file system", "--out", tmp_path / "ro" / "exports")


def test_an_export_onto_an_existing_file_fails_before_tensorflow_is_imported(tmp_path):
    existing = tmp_path / "model.keras"
    existing.write_bytes(b"someone's model")
    probe = ("import sys\nfrom pairzoo.cli import main\n"
             f"code = main(['export', '{RELEASE}', '--format', 'keras', '--out', "
             f"{str(existing)!r}])\n"
             "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.split() == ["2", "False", "False"], result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "already exists" in result.stderr
    assert existing.read_bytes() == b"someone's model"


def test_a_failed_export_leaves_no_folder_behind(tmp_path, capsys, monkeypatch):
    """Before: a failed ONNX export left exports/NAME/ (empty) behind."""

    def onnx_missing(*args, **kwargs):
        raise PairzooError("ONNX export needs tf2onnx, onnx: pip install 'pairzoo[onnx]'")

    monkeypatch.setattr("pairzoo.export.write_onnx", onnx_missing)
    assert_refused(tmp_path, capsys, ["export", RELEASE, "--format", "onnx"], "pip install")
    assert not (tmp_path / "exports").exists()


# --- hostile images -----------------------------------------------------------------------------


def blank_png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit black PNG of any size, written without holding its pixels: a 15000 x 15000
    one is 27 kB (rows of zeros compress to almost nothing)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("width, height", [(15000, 15000), (10000, 10000), (5000, 4000)])
def test_a_decompression_bomb_is_refused_in_one_line(width, height, tmp_path, capsys):
    """Before: 15000 x 15000 was "internal error: DecompressionBombError"; 10000 x 10000 went
    through after PIL's two-line warning. Now anything above MAX_IMAGE_PIXELS is refused from
    the header, before a pixel is decoded, and PIL says nothing."""
    from pairzoo.predict import MAX_IMAGE_PIXELS

    bomb = blank_png(tmp_path / "bomb.png", width, height)
    digit = blank_png(tmp_path / "digit.png", 28, 28)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        line = assert_refused(tmp_path, capsys, ["predict", RELEASE, digit, bomb], bomb,
                              "a digit needs at most", "downscale it")
    assert not [w for w in seen if "DecompressionBomb" in w.category.__name__]
    assert f"{MAX_IMAGE_PIXELS / 1e6:.1f}" in line or f"{MAX_IMAGE_PIXELS:,}" in line


def test_a_phone_photo_sized_digit_is_still_read(tmp_path):
    from pairzoo.predict import load_digit_image

    photo = blank_png(tmp_path / "photo.png", 4000, 3000)  # 12 megapixels
    assert load_digit_image(photo).shape == (14, 14)


# --- models that carry code -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["evaluate", "export", "predict"])
def test_the_safe_mode_refusal_names_the_lambda_layer(command, tmp_path, capsys):
    """Before: "not a valid .keras model (ValueError)", naming nothing."""
    import keras
    import numpy as np

    inputs = keras.Input((2, 14, 14))
    outputs = keras.layers.Lambda(lambda x: x * 2, name="doubler")(inputs)
    model_file = tmp_path / "model.keras"
    keras.Model(inputs, outputs).save(model_file)
    pair = tmp_path / "pair.npy"
    np.save(pair, np.zeros((2, 14, 14), np.float32))
    args = {"evaluate": ["evaluate", model_file, "--pairs", "10"],
            "export": ["export", model_file, "--format", "keras", "--out",
                       tmp_path / "out.keras"],
            "predict": ["predict", model_file, pair]}[command]
    assert_refused(tmp_path, capsys, args, model_file, "'doubler'", "Lambda", "safe mode")
