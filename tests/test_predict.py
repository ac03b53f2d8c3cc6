"""Predict: digit images and .npy pairs in, any of the three model formats out, by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from pairzoo.data import downsample, load_source
from pairzoo.errors import PairzooError
from pairzoo.export import export_model
from pairzoo.predict import (
    answer_for,
    load_digit_image,
    load_npy_pair,
    load_pair,
    load_runner,
    model_format,
    predict_files,
)
from pairzoo.registry import create_model


@pytest.fixture(scope="module")
def digits(session_cache):
    """Two real MNIST test digits (28x28 uint8): a 3 and a 7."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAIRZOO_CACHE", str(session_cache))
        pool = load_source("embedded").test
    three = pool.images[np.flatnonzero(pool.labels == 3)[0]]
    seven = pool.images[np.flatnonzero(pool.labels == 7)[0]]
    return three.astype(np.uint8), seven.astype(np.uint8)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An (untrained) siamese model as .keras, SavedModel and .tflite."""
    root = tmp_path_factory.mktemp("predict_models")
    keras.utils.set_random_seed(0)
    create_model("siamese_argmax").save(root / "model.keras")
    return {"keras": root / "model.keras",
            "savedmodel": export_model(root / "model.keras", "savedmodel",
                                       out=root / "savedmodel").path,
            "tflite": export_model(root / "model.keras", "tflite",
                                   out=root / "model.tflite").path}


def save_png(array: np.ndarray, path: str, mode: str = "L") -> str:
    Image.fromarray(array).convert(mode).save(path)
    return path


def pooled(digit: np.ndarray) -> np.ndarray:
    return downsample(digit[None].astype(np.float32))[0]


# --- images -> a pair ----------------------------------------------------------------------


def test_a_28x28_digit_is_pooled_as_the_pair_protocol_does(digits):
    three, _ = digits
    assert np.array_equal(load_digit_image(save_png(three, "three.png")), pooled(three))


def test_any_size_comes_down_to_the_same_digit(digits):
    three, _ = digits
    big = np.kron(three, np.ones((10, 10), dtype=np.uint8))  # 280x280, each pixel a 10x10 block
    assert np.array_equal(load_digit_image(save_png(big, "big.png")), pooled(three))
    tiny = pooled(three).round().astype(np.uint8)  # already 14x14
    assert np.array_equal(load_digit_image(save_png(tiny, "tiny.png")), tiny)


def test_a_wide_picture_keeps_its_aspect_ratio(digits):
    three, _ = digits
    wide = np.zeros((28, 56), dtype=np.uint8)
    wide[:, :28] = 255  # a white left half: squeezing would fill the square, padding does not
    image = load_digit_image(save_png(wide, "wide.png"))
    assert image[:3].max() == 0 and image[-3:].max() == 0  # black bands above and below
    assert image[5:9, :7].min() == 255 and image[5:9, 7:].max() == 0


def test_colour_jpeg_and_inverted_pictures(digits):
    three, _ = digits
    assert np.array_equal(load_digit_image(save_png(three, "rgb.png", "RGB")), pooled(three))
    jpeg = load_digit_image(save_png(three, "three.jpg"))
    assert np.abs(jpeg - pooled(three)).mean() < 3  # lossy, but the same digit
    inverted = save_png(255 - three, "inverted.png")
    assert np.array_equal(load_digit_image(inverted, invert=True), pooled(three))
    assert not np.array_equal(load_digit_image(inverted), pooled(three))


def test_two_images_make_one_pair(digits):
    three, seven = digits
    pair = load_pair(save_png(three, "a.png"), save_png(seven, "b.jpeg"))
    assert pair.shape == (1, 2, 14, 14) and pair.dtype == np.float32
    assert np.array_equal(pair[0, 0], pooled(three))


@pytest.mark.parametrize("shape", [(2, 14, 14), (1, 2, 14, 14), (2, 28, 28)])
def test_npy_pairs(shape):
    array = np.random.default_rng(0).uniform(0, 255, shape)
    np.save("pair.npy", array)
    pair = load_npy_pair("pair.npy")
    assert pair.shape == (1, 2, 14, 14) and pair.dtype == np.float32
    expected = downsample(array) if shape == (2, 28, 28) else array.reshape(2, 14, 14)
    np.testing.assert_allclose(pair[0], expected, rtol=1e-6)


@pytest.mark.parametrize("make, phrase", [
    (lambda: np.save("bad.npy", np.zeros((3, 14, 14))), "has shape (3, 14, 14)"),
    (lambda: np.save("bad.npy", np.zeros((2, 2, 14, 14))), "has shape (2, 2, 14, 14)"),
    (lambda: np.save("bad.npy", np.full((2, 14, 14), np.nan)), "NaN"),
    (lambda: np.save("bad.npy", np.array([{"a": 1}]), allow_pickle=True), "cannot read"),
    (lambda: Path("bad.npy").write_bytes(b"\x93NUMPY garbage"), "cannot read"),
    (lambda: None, "no .npy file"),
])
def test_bad_npy_files(make, phrase):
    make()
    with pytest.raises(PairzooError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        load_pair("bad.npy")


def test_bad_images(digits):
    Path("broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = save_png(digits[0], "good.png")
    with pytest.raises(PairzooError, match="cannot read broken.png"):
        load_pair(good, "broken.png")
    with pytest.raises(PairzooError, match="no image at missing.png"):
        load_pair(good, "missing.png")
    with pytest.raises(PairzooError, match="expected a PNG or JPEG"):
        load_pair(good, "notes.txt")
    with pytest.raises(PairzooError, match="give two digit images"):
        load_pair(good)


# --- models by format, outputs by name -----------------------------------------------------


def test_the_three_formats_give_the_same_outputs(models, digits):
    pairs = np.stack([pooled(digits[0]), pooled(digits[1])])[None].repeat(3, axis=0)
    outputs = {fmt: load_runner(path)(pairs) for fmt, path in models.items()}
    assert {fmt: model_format(path) for fmt, path in models.items()} == {
        "keras": "keras", "savedmodel": "savedmodel", "tflite": "tflite"}
    for fmt in ("savedmodel", "tflite"):
        assert sorted(outputs[fmt]) == ["compare", "digit_a", "digit_b"]
        for name, value in outputs["keras"].items():
            np.testing.assert_allclose(outputs[fmt][name], value, atol=1e-5)


def test_bad_model_files(models):
    Path("broken.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(PairzooError, match="cannot load broken.tflite as a TFLite model"):
        load_runner("broken.tflite")
    Path("broken_savedmodel").mkdir()
    Path("broken_savedmodel/saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(PairzooError, match="cannot load the SavedModel"):
        load_runner("broken_savedmodel")
    Path("model.onnx").write_bytes(b"onnx")
    with pytest.raises(PairzooError, match="cannot load model.onnx as an ONNX model"):
        load_runner("model.onnx")
    for path in ("empty_folder", "nowhere.tflite"):
        Path("empty_folder").mkdir(exist_ok=True)
        with pytest.raises(PairzooError, match="no model at"):
            load_runner(path)


def test_the_answer_reads_outputs_by_name():
    outputs = {"digit_b": np.eye(10)[[7]], "compare": np.array([[0.25]]),
               "digit_a": np.eye(10)[[9]] * 0.9}
    answer = answer_for(outputs)
    assert (answer.answer, answer.probability, answer.p_less_equal) == (">", 0.75, 0.25)
    assert (answer.digit_a, answer.digit_b) == (9, 7)
    assert answer.digit_a_probability == pytest.approx(0.9)
    two_channel = answer_for({"compare": np.array([[0.5]])})  # a tie reads ">", as evaluate
    assert (two_channel.answer, two_channel.digit_a, two_channel.digit_b) == (">", None, None)


def test_predict_files_matches_the_runner(models, digits):
    a, b = save_png(digits[1], "a.png"), save_png(digits[0], "b.png")
    expected = load_runner(models["tflite"])(load_pair(a, b))
    answer = predict_files(models["tflite"], a, b)
    assert answer.p_less_equal == pytest.approx(float(expected["compare"][0, 0]))
    assert answer.digit_a == int(expected["digit_a"][0].argmax())


# --- the command ----------------------------------------------------------------------------


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pairzoo", "predict", *args],
                          capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=300)


def test_cli_predict_text_and_json(models, digits):
    a, b = save_png(digits[0], "a.png"), save_png(255 - digits[1], "b.png")
    text = cli(str(models["tflite"]), a, b, "--invert")
    assert text.returncode == 0, text.stderr
    first, second = text.stdout.strip().splitlines()
    assert first.startswith(("first ≤ second", "first > second"))
    assert "a decision" in first  # an argmax head answers 0/1, and says so
    assert second.startswith("digits: ")
    answer = json.loads(cli(str(models["tflite"]), a, b, "--invert", "--json").stdout)
    assert set(answer) == {"answer", "probability", "p_less_equal", "digit_a",
                           "digit_a_probability", "digit_b", "digit_b_probability",
                           "decision", "digits_trained", "model"}
    assert answer["decision"] is True  # siamese_argmax: its compare output is a 0/1 decision
    assert answer["probability"] >= 0.5


def test_predicting_with_tflite_never_imports_tensorflow(models, digits):
    a, b = save_png(digits[0], "a.png"), save_png(digits[1], "b.png")
    code = ("import sys; from pairzoo.predict import predict_files\n"
            f"predict_files({str(models['tflite'])!r}, {a!r}, {b!r})\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False False", out.stderr


@pytest.mark.parametrize("files, phrase", [
    (["broken.png", "a.png"], "cannot read broken.png"),
    (["pair.npy"], "has shape (3, 14, 14)"),
    (["a.png"], "give two digit images"),
    (["a.png", "missing.png"], "no image at missing.png"),
])
def test_cli_bad_inputs_are_one_line(models, digits, files, phrase):
    save_png(digits[0], "a.png")
    Path("broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    np.save("pair.npy", np.zeros((3, 14, 14)))
    out = cli(str(models["tflite"]), *files)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], out.stderr


def test_cli_bad_model_is_one_line(digits):
    Path("broken.tflite").write_bytes(b"not a flatbuffer")
    a = save_png(digits[0], "a.png")
    out = cli("broken.tflite", a, a)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot load broken.tflite" in lines[0], out.stderr
