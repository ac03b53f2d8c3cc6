"""Release weights: every entry has them, their hashes hold, they load in a fresh process and
reproduce their cards exactly; mirrors and tampered files; the sample digits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pairzoo.errors import ConfigError
from pairzoo.zoo import (
    WeightsError,
    create_model,
    list_models,
    pretrained_models,
    release_dir,
    release_info,
    sha256_of,
    weights_path,
)

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
RELEASED = pretrained_models()
needs_releases = pytest.mark.skipif(not RELEASED, reason="no release weights in this checkout")


def test_every_entry_has_release_weights_and_a_card():
    missing = [name for name in list_models() if name not in RELEASED]
    assert not missing, f"no release: {missing} (run `pairzoo release --card-data idx:DIR`)"
    for name in RELEASED:
        folder = release_dir(name)
        assert sorted(p.name for p in folder.iterdir()) == [
            "README.md", "config.json", "metadata.json", "model.weights.h5"], name
        card = (folder / "README.md").read_text()
        info = release_info(name)
        assert f"seed **{info['seed']}**" in card and info["sha256"] in card
        assert "mnist_test" in info["metrics"], f"{name}: card not measured on MNIST test pairs"


def test_the_releases_fit_the_size_budget():
    total = sum((release_dir(name) / "model.weights.h5").stat().st_size for name in RELEASED)
    assert total <= 15 * 2**20, f"{total / 2**20:.1f} MB of release weights"


@needs_releases
@pytest.mark.parametrize("name", RELEASED)
def test_shipped_weights_match_their_hash(name):
    info = release_info(name)
    assert sha256_of(release_dir(name) / "model.weights.h5") == info["sha256"]
    assert weights_path(name) == release_dir(name) / "model.weights.h5"
    candidates = {c["seed"]: c for c in info["selection"]["candidates"]}
    kept = candidates[info["seed"]]["final_train_loss"]
    assert all(c["final_train_loss"] is None or c["final_train_loss"] >= kept
               for c in candidates.values()), "not the lowest final training loss"


CARD_CHECK = """
import json, sys
import pairzoo
from pairzoo.evaluation import evaluate
from pairzoo.zoo import release_info, release_spec
t10k = sys.argv[1] if len(sys.argv) > 1 else None
out = {}
for name in pairzoo.list_models(pretrained=True):
    model = pairzoo.create_model(name, weights="zoo")
    spec = release_spec(name)
    cards = release_info(name)["metrics"]
    found = {"embedded_test": evaluate(model, spec.test_pairs())["test_error"]}
    if t10k:
        card = cards["mnist_test"]
        pairs = spec.test_pairs(None, test_data=t10k, seed=card["seed"], whole_split=True)
        assert len(pairs) == card["pairs"], (name, len(pairs))
        found["mnist_test"] = evaluate(model, pairs)["test_error"]
    out[name] = {k: (v, cards[k]["test_error"]) for k, v in found.items()}
print(json.dumps(out))
"""


@pytest.mark.slow  # one fresh process per entry (~60 s); the hash and load tests stay
@needs_releases
def test_every_release_reproduces_its_card_in_a_fresh_process(tmp_path):
    """Loaded the way a user loads it (a new process, `weights="zoo"`), each release gives its
    card's test error exactly: on its own test pairs always, and on the 5,000 MNIST
    test-split pairs where that split is here."""
    from conftest import T10K

    args = [f"idx:{T10K}"] if (T10K / "t10k-images-idx3-ubyte.gz").is_file() else []
    env = {**os.environ, "PAIRZOO_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", CARD_CHECK, *args], capture_output=True,
                          text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(found) == RELEASED
    wrong = {name: figures for name, figures in found.items()
             if any(ours != card for ours, card in figures.values())}
    assert not wrong, wrong


@pytest.fixture
def release_copy(tmp_path, monkeypatch):
    """A copy of one small release in a package folder of its own, free to tamper with."""
    if "siamese_small_cnn" not in RELEASED:
        pytest.skip("siamese_small_cnn has no release here")
    root = tmp_path / "releases"
    shutil.copytree(release_dir("siamese_small_cnn"), root / "siamese_small_cnn")
    monkeypatch.setattr("pairzoo.zoo.releases_root", lambda: root)
    return root / "siamese_small_cnn"


def test_a_tampered_weight_file_is_refused_not_loaded(release_copy):
    weights = release_copy / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match its recorded sha256.*refused"):
        create_model("siamese_small_cnn", weights="zoo")


def test_a_mirror_serves_the_same_weights_and_a_bad_one_is_refused(release_copy, tmp_path,
                                                                    monkeypatch):
    import numpy as np

    mirror = tmp_path / "mirror" / "siamese_small_cnn"
    mirror.mkdir(parents=True)
    shutil.copy(release_copy / "model.weights.h5", mirror / "model.weights.h5")
    packaged = create_model("siamese_small_cnn", weights="zoo")
    from_folder = create_model("siamese_small_cnn", weights=str(mirror.parent))
    monkeypatch.setenv("PAIRZOO_WEIGHTS_URL", mirror.parent.as_uri())
    from_url = create_model("siamese_small_cnn", weights="zoo")
    for model in (from_folder, from_url):
        for mine, theirs in zip(model.get_weights(), packaged.get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs)
    cached = list((Path(os.environ["KERAS_HOME"]) / "pairzoo-weights").glob("*.h5"))
    assert len(cached) == 1  # fetched once, then served from Keras's cache

    # a cached copy whose hash matches is served without fetching (as it should be): the bad
    # mirror is tried with an empty cache
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "fresh_keras_home"))
    bad = tmp_path / "bad" / "siamese_small_cnn"
    bad.mkdir(parents=True)
    (bad / "model.weights.h5").write_bytes(b"not the weights")
    with pytest.raises(WeightsError, match="does not match .*recorded sha256: refused"):
        create_model("siamese_small_cnn", weights=str(bad.parent))
    with pytest.raises(WeightsError, match="cannot fetch"):
        create_model("siamese_small_cnn", weights=str((tmp_path / "empty").as_uri()))


def test_release_weights_take_no_overrides():
    with pytest.raises(ConfigError, match="drop the overrides"):
        create_model("siamese_small_cnn", weights="zoo", share_weights=False)


def test_an_entry_without_a_release_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setattr("pairzoo.zoo.releases_root", lambda: tmp_path)
    with pytest.raises(WeightsError, match="pairzoo release siamese_argmax"):
        create_model("siamese_argmax", weights="zoo")
    assert list_models(pretrained=True) == []


@needs_releases
def test_the_sample_digits_are_small_and_read_right():
    """The README's first command: two MNIST test-split digits (a 3 and a 7), under 5 kB."""
    from pairzoo.cli import main

    assert all(p.stat().st_size < 5000 for p in DIGITS.glob("*.png"))
    name = "siamese_vgg_aug" if "siamese_vgg_aug" in RELEASED else RELEASED[0]
    from pairzoo.predict import predict_files

    answer = predict_files(name, DIGITS / "three.png", DIGITS / "seven.png")
    assert answer.answer == "<=" and (answer.digit_a, answer.digit_b) == (3, 7)
    assert "release weights" in answer.model and "test error" in answer.model
    assert main(["predict", name, str(DIGITS / "seven.png"), str(DIGITS / "three.png")]) == 0
