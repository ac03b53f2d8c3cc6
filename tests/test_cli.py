"""The CLI through its real entry point: exit codes, output, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "COLUMNS": "200"}


def assert_one_line_error(result, *phrases):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0]


@pytest.mark.parametrize("args", [["--help"], ["list"], ["train", "--help"]])
def test_help_and_list_do_not_import_tensorflow(args):
    code = ("import sys; from pairzoo.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "print('TF' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'clean')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert out.stdout.strip().endswith("clean")


def test_tensorflow_starts_quiet_with_onednn_as_tensorflow_chose_and_other_stderr_intact():
    """The start-up banners are filtered from the one `import tensorflow`; nothing else is, and
    pairzoo leaves TensorFlow's own choice of oneDNN kernels alone (on by default where the CPU
    has AVX-512, off elsewhere: it differs between machines). `import pairzoo, keras`, as the
    docs' examples begin, is as quiet (tests/test_docs.py checks that they begin so)."""
    probe = ("from tensorflow.python.util import _pywrap_util_port as port\n"
             "print(port.IsMklEnabled())")
    code = ("import os, pairzoo, keras, tensorflow\n"
            "os.write(2, b'a line of our own\\n')\n" + probe)
    env = {k: v for k, v in ENV.items() if not k.startswith("TF_")}  # TensorFlow's defaults
    plain = subprocess.run([sys.executable, "-c", "import tensorflow\n" + probe],
                           capture_output=True, text=True, env=env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == plain.stdout.strip() != ""
    assert out.stderr == "a line of our own\n"
    if plain.stdout.strip() == "True":
        logs = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"})
        assert "oneDNN custom operations are on" in logs.stderr  # asked for: shown


def test_list_shows_the_zoo(console_script, pairzoo_cli):
    out = console_script("list").stdout
    assert "siamese_fullyconv" in out and "two_channel_baseline" in out
    assert "70,906" in out
    assert "siamese_argmax" in pairzoo_cli("list", "siamese_*").stdout


def test_train_evaluate_round_trip(tmp_path, t10k, console_script, pairzoo_cli):
    """The README's main job through the real program; the rest in this process."""
    out_dir = tmp_path / "run"
    result = console_script("train", "siamese_argmax", "--epochs", "1", "--seed", "2",
                 "--set", "train.n_train=100", "--set", "train.n_test=100", "--out", str(out_dir))
    assert "test error" in result.stdout
    assert "epoch 1/1" in result.stderr  # plain progress lines when not a terminal
    assert "siamese_argmax: 1 epoch\n" in result.stderr  # not "1 epochs"
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["units"] == "percent"
    assert metrics["test_error"] + metrics["test_accuracy"] == pytest.approx(100)
    # evaluating the run folder on its own test pairs gives what training measured
    evaluated = pairzoo_cli("evaluate", str(out_dir)).stdout
    assert re.search(rf"test_error\s+│\s+{metrics['test_error']:g} %", evaluated), evaluated
    on_t10k = pairzoo_cli("evaluate", str(out_dir), "--test-data", f"idx:{t10k}",
                          "--pairs", "all").stdout
    assert "5,000 pairs" in on_t10k and "digit_accuracy" in on_t10k
    # same seed, another process: the same metrics (all but the wall time)
    pairzoo_cli("train", "siamese_argmax", "--epochs", "1", "--seed", "2",
                "--set", "train.n_train=100", "--set", "train.n_test=100",
                "--out", str(tmp_path / "again"))
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    metrics.pop("train_seconds")
    again.pop("train_seconds")
    assert again == metrics


def test_errors_through_the_real_program(console_script):
    for args, phrase in ((["train", "siamese_fulyconv"], "unknown model"),
                         (["frobnicate"], "invalid choice")):
        assert_one_line_error(console_script(*args, check_ok=False), phrase)


@pytest.mark.parametrize("args, phrases", [
    (["train", "siamese_fulyconv"], ["unknown model", "siamese_fullyconv"]),
    (["train", "siamese_fullyconv", "--epochs", "0"], ["--epochs", "positive integer"]),
    (["train", "siamese_fullyconv", "--lr", "fast"], ["--lr"]),
    (["train", "siamese_fullyconv", "--set", "tower.dropot=0.1"], ["dropout"]),
    (["train", "siamese_fullyconv", "--train-data", "mnist"], ["unknown data source"]),
    (["train", "siamese_fullyconv", "--train-data", "idx:/no/such/dir"], ["does not exist"]),
    (["evaluate", "/no/such/run"], ["no model at"]),
    (["list", "zzz*"], ["no model matches"]),
    (["frobnicate"], ["invalid choice"]),
])
def test_bad_input_is_one_line(args, phrases, pairzoo_cli):
    """In this process; test_errors_through_the_real_program checks the rule through the
    console script."""
    assert_one_line_error(pairzoo_cli(*args, check_ok=False), *phrases)


def test_corrupt_files_are_one_line(tmp_path, pairzoo_cli):
    bad_model = tmp_path / "model.keras"
    bad_model.write_bytes(b"not a zip file")
    assert_one_line_error(pairzoo_cli("evaluate", str(bad_model), check_ok=False), "cannot load")
    data = tmp_path / "idx"
    data.mkdir()
    (data / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    (data / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01")
    assert_one_line_error(
        pairzoo_cli("train", "siamese_argmax", "--test-data", f"idx:{data}", check_ok=False), "idx")


def test_root_shim_is_the_same_cli():
    shim = Path(__file__).resolve().parents[1] / "cli.py"
    out = subprocess.run([sys.executable, str(shim), "list", "two_*"], capture_output=True,
                         text=True, env=ENV)
    assert out.returncode == 0 and "two_channel_baseline" in out.stdout


def test_list_never_cuts_a_name(pairzoo_cli, monkeypatch):
    """Piped: plain columns, every name whole; on a narrow terminal: columns dropped, not names;
    machine formats parse."""
    import csv
    import io

    from pairzoo.registry import list_models

    names = list_models()
    piped = pairzoo_cli("list").stdout
    assert all(name in piped for name in names) and "…" not in piped
    from rich.console import Console

    monkeypatch.setattr("pairzoo.commands.zoo.console",  # a 60-column terminal
                        lambda stderr=False: Console(width=60, force_terminal=True,
                                                     color_system=None))
    narrow = pairzoo_cli("list").stdout
    assert all(name in narrow for name in names) and "…" not in narrow
    assert max(len(line) for line in narrow.splitlines()) <= 60
    rows = list(csv.DictReader(io.StringIO(pairzoo_cli("list", "--format", "csv").stdout)))
    assert [row["name"] for row in rows] == names
    assert {row["trainable params"] for row in rows
            if row["name"] == "two_channel_baseline"} == {"70906"}
    chosen = json.loads(pairzoo_cli("list", "--format", "json", "--columns",
                                    "params,name").stdout)
    assert list(chosen[0]) == ["name", "trainable params"] and len(chosen) == len(names)
    assert "unknown column" in pairzoo_cli("list", "--columns", "nmae", check_ok=False).stderr


def test_show_prints_the_preset_and_every_settable_key(pairzoo_cli):
    import tomllib

    from pairzoo.config import settable_keys
    from pairzoo.registry import get_preset

    out = pairzoo_cli("show", "siamese_fullyconv").stdout
    toml_text = out[out.index("[model]"):out.index("keys `--set")]
    parsed = tomllib.loads(toml_text)
    assert parsed["train"]["learning_rate"] == 0.05 and parsed["model"]["tower"]["kind"] == "cnn"
    for key, *_ in settable_keys(get_preset("siamese_fullyconv")):
        assert key in out, key
    assert "001_a8181b197368cef8.txt" in out and "63,092" in out


def test_runs_lists_past_runs_newest_first(pairzoo_cli, tmp_path):
    tiny = ["--epochs", "1", "--set", "train.n_train=100", "--set", "train.n_test=100"]
    pairzoo_cli("train", "siamese_argmax", "--seed", "1", *tiny)
    pairzoo_cli("train", "siamese_small_cnn", "--seed", "2", *tiny)
    lines = pairzoo_cli("runs").stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["name", "date", "seed"]
    assert lines[1].startswith("siamese_small_cnn") and lines[2].startswith("siamese_argmax")
    assert "%" in lines[1] and "runs/siamese_small_cnn/" in lines[1]
    only = pairzoo_cli("runs", "siamese_a*").stdout
    assert "siamese_small_cnn" not in only


def test_runs_with_no_runs_is_an_answer_not_an_error(pairzoo_cli):
    out = pairzoo_cli("runs").stdout
    assert out == "no runs in runs/ (`pairzoo train NAME` makes one)\n"
    (Path("elsewhere")).mkdir()
    assert "no runs of 'siamese_*' in elsewhere/" in pairzoo_cli(
        "runs", "siamese_*", "--root", "elsewhere").stdout


def test_counts_take_the_right_plural():
    from pairzoo.wording import plural

    assert (plural(1, "epoch"), plural(25, "epoch"), plural(0, "run")) == (
        "1 epoch", "25 epochs", "0 runs")


def test_version_names_pairzoo_keras_and_the_backend():
    out = subprocess.run([sys.executable, "-m", "pairzoo", "--version"], capture_output=True,
                         text=True, env=ENV)
    assert out.returncode == 0
    assert re.fullmatch(r"pairzoo \S+, keras \S+, backend \w+ \(.+\)\n", out.stdout)


def test_dry_run_says_when_every_run_is_stored(pairzoo_cli):
    results = Path(__file__).resolve().parents[1] / "results" / "003" / "runs.jsonl"
    out = pairzoo_cli("reproduce", "003", "--store", str(results), "--dry-run").stdout
    assert "0 runs to train" in out and "Every run is already in" in out
    assert "--store" in out and "afresh" in out
