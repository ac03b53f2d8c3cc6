"""A zoo name answers without TensorFlow once its release is converted (LiteRT, cached and
hash-checked), and many pairs go through one call (`pairzoo.predict_pairs`, `--pairs`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pairzoo.batch import predict_pairs, read_pairs
from pairzoo.converted import cached_tflite, converted_path, release_tflite
from pairzoo.errors import PairzooError

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
NAME = "siamese_linear"  # small: converts in seconds; its digit outputs are untrained


@pytest.fixture(scope="module")
def converted(session_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAIRZOO_CACHE", str(session_cache))
        return release_tflite(NAME)


def test_a_release_converts_once_into_the_cache_keyed_by_its_weights(converted):
    from pairzoo import __version__
    from pairzoo.zoo import release_info, sha256_of

    assert converted == converted_path(NAME) and cached_tflite(NAME) == converted
    assert release_info(NAME)["sha256"][:16] in converted.name and __version__ in converted.name
    recorded = converted.with_name(converted.name + ".sha256").read_text().strip()
    assert recorded == sha256_of(converted)


def test_a_damaged_conversion_is_made_again(converted):
    data = converted.read_bytes()
    try:
        converted.write_bytes(data[: len(data) // 2])  # cut short
        assert cached_tflite(NAME) is None
        assert release_tflite(NAME) == converted and converted.read_bytes() == data
    finally:
        converted.write_bytes(data)


def test_converted_answers_match_keras(converted, tiny_pairs):
    import pairzoo

    pairs = tiny_pairs[1].pairs
    keras_p = pairzoo.create_model(NAME, weights="zoo").predict(pairs, verbose=0)["compare"]
    answers = predict_pairs(NAME, pairs)
    assert len(answers) == len(pairs)
    np.testing.assert_allclose([a.p_less_equal for a in answers], keras_p[:, 0], atol=1e-5)
    assert all("on LiteRT" in a.model for a in answers)


def test_a_converted_zoo_name_answers_without_importing_tensorflow(converted):
    code = ("import sys, pairzoo\n"
            f"[a] = pairzoo.predict_pairs({NAME!r}, {str(DIGITS)!r})\n"
            "print(a.answer, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PAIRZOO_CACHE": str(converted.parents[1])},
                         timeout=300)
    assert out.stdout.split() == [">", "False", "False"], out.stderr  # seven, three


def test_predict_does_not_read_untrained_digit_outputs(converted, pairzoo_cli):
    out = pairzoo_cli("predict", NAME, DIGITS / "three.png", DIGITS / "seven.png")
    assert "digits: not read" in out.stdout and "untrained" in out.stdout
    answer = json.loads(pairzoo_cli("predict", NAME, DIGITS / "three.png",
                                    DIGITS / "seven.png", "--json").stdout)
    assert answer["digits_trained"] is False and answer["digit_a"] is None


def test_many_pairs_from_npy_csv_and_folder_agree(converted, pairzoo_cli, tmp_path):
    from pairzoo.predict import load_pair

    pair = load_pair(DIGITS / "three.png", DIGITS / "seven.png")[0]
    np.save("batch.npy", np.stack([pair, pair[::-1], pair]))
    (tmp_path / "pairs.csv").write_text(f"first,second\n{DIGITS}/three.png,{DIGITS}/seven.png\n"
                                        f"{DIGITS}/seven.png,{DIGITS}/three.png\n")
    from_npy = [a.answer for a in predict_pairs(NAME, "batch.npy")]
    from_csv = [a.answer for a in predict_pairs(NAME, tmp_path / "pairs.csv")]
    assert from_npy == ["<=", ">", "<="] and from_csv == from_npy[:2]
    assert [a.answer for a in predict_pairs(NAME, DIGITS)] == [">"]  # seven.png, three.png
    out = pairzoo_cli("predict", NAME, "--pairs", "batch.npy")
    assert out.stdout.splitlines()[1].startswith("1: first > second")
    listed = json.loads(pairzoo_cli("predict", NAME, "--pairs", "pairs.csv", "--json").stdout)
    assert [row["answer"] for row in listed] == from_npy[:2]


@pytest.mark.parametrize("make, phrase", [
    (lambda: np.save("p.npy", np.zeros((4, 3, 14, 14))), "has shape (4, 3, 14, 14)"),
    (lambda: Path("p.csv").write_text("a,b\nx.png,y.png\n"), "columns first,second"),
    (lambda: Path("p.txt").write_text("x"), "an .npy batch, a .csv"),
])
def test_bad_batches_are_one_line(make, phrase, pairzoo_cli):
    make()
    source = next(p for p in ("p.npy", "p.csv", "p.txt") if Path(p).exists())
    with pytest.raises(PairzooError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        read_pairs(source)
    out = pairzoo_cli("predict", NAME, "--pairs", source, check_ok=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
