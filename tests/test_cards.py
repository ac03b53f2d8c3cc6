"""What exports and cards say about feeding a model and reading it: the preprocessing in words
that reproduce the card's figure, one decision rule, untrained digit outputs named as such,
figures with their confidence intervals, cards rewritable from their metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pairzoo.cards import error_interval, release_card
from pairzoo.interface import DECISION_THRESHOLD, reads_less_equal
from pairzoo.registry import list_models
from pairzoo.zoo import pretrained_models, release_dir, release_info

RELEASED = pretrained_models()
UNTRAINED_DIGITS = ["siamese_linear", "two_tower_linear"]  # digit outputs, aux weight 0


def prepare_from_words(digits: np.ndarray, words: dict) -> np.ndarray:
    """(M, 28, 28) uint8 MNIST digits -> (M, 14, 14) as an app developer would, from a
    sidecar's `input.preprocessing` fields alone (not pairzoo's pipeline)."""
    assert list(digits.shape[1:]) == words["source_size"]
    pooling = words["pooling"]
    assert pooling["op"] == "mean" and pooling["size"] == pooling["stride"]
    (h, w), (kh, kw) = words["source_size"], pooling["size"]
    pixels = digits.astype(np.float32) * words["pixel_scale"]
    return pixels.reshape(len(digits), h // kh, kh, w // kw, kw).mean(axis=(2, 4))


def test_the_sidecars_words_alone_give_the_cards_figure(t10k, tmp_path):
    """Export siamese_fullyconv (its card: 2.86 % on the 5,000 MNIST test-split pairs), read
    only the sidecar, prepare the test split's digits from its words and count: the card's
    figure exactly. The plausible other reading, x[::2, ::2], does not give it."""
    from ai_edge_litert.interpreter import Interpreter

    from pairzoo.data.pairs import _streams
    from pairzoo.data.sources import load_source
    from pairzoo.export import export_model

    name = "siamese_fullyconv"
    card = release_info(name)["metrics"]["mnist_test"]
    result = export_model(name, "tflite", out=tmp_path / "model.tflite")
    facts = json.loads(result.sidecar.read_text())
    words = facts["input"]["preprocessing"]
    # the card's pairs: its seed's permutation of the whole test split, 2N digits in order
    pool = load_source(f"idx:{t10k}").evaluation
    chosen = _streams(card["seed"])[1].permutation(len(pool))[: 2 * card["pairs"]]
    images, labels = pool.images[chosen], pool.labels[chosen].reshape(-1, 2)
    truth = labels[:, 0] <= labels[:, 1]

    def error(prepared: np.ndarray) -> float:
        pairs = prepared.reshape(-1, 2, 14, 14).astype(facts["input"]["dtype"])
        signature = Interpreter(model_path=str(result.path)).get_signature_runner(
            facts["signature"])
        p = signature(**{facts["input"]["name"]: pairs})["compare"][:, 0]
        assert facts["input"]["decision"] == f"first <= second when compare > {DECISION_THRESHOLD}"
        return round(100 * float(np.mean((p > DECISION_THRESHOLD) != truth)), 2)

    assert error(prepare_from_words(images, words)) == card["test_error"]
    assert error(images[:, ::2, ::2]) != card["test_error"]


def test_one_decision_rule_for_evaluate_and_predict():
    """P = 0.5 exactly: evaluate counted it "<=" never, predict always; now both read ">"."""
    from pairzoo.data import PairSet
    from pairzoo.evaluation import score
    from pairzoo.predict import answer_for

    assert not reads_less_equal(0.5) and reads_less_equal(0.5000001)
    assert answer_for({"compare": np.array([[0.5]])}).answer == ">"
    pairs = PairSet(np.zeros((2, 2, 14, 14), np.float32), np.array([[3, 7], [7, 3]]))
    assert score({"compare": np.array([[0.5], [0.5]])}, pairs)["test_error"] == 50


def test_every_card_is_what_its_metadata_makes():
    """Cards are rewritten from metadata (`pairzoo release --cards-only`), never by hand."""
    stale = [name for name in RELEASED
             if (release_dir(name) / "README.md").read_text() != release_card(name)]
    assert not stale, f"stale cards: {stale}; run `pairzoo release --cards-only`"


@pytest.mark.parametrize("name", ["siamese_fullyconv", "siamese_linear"])
def test_cards_give_the_figure_with_its_interval_and_count(name):
    card = (release_dir(name) / "README.md").read_text()
    t10k = release_info(name)["metrics"]["mnist_test"]
    wrong = round(t10k["test_error"] * t10k["pairs"] / 100)
    low, high = error_interval(t10k["test_error"], t10k["pairs"])
    assert f"{wrong:,} of 5,000 pairs wrong" in card
    assert "95 % CI" in card and f"**{t10k['test_error']:g} %**" not in card
    from statsmodels.stats.proportion import proportion_confint

    assert (low, high) == pytest.approx(
        [100 * v for v in proportion_confint(wrong, t10k["pairs"], method="wilson")])
    assert low < t10k["test_error"] < high


def test_siamese_fullyconv_card_says_2_9_with_its_interval():
    card = (release_dir("siamese_fullyconv") / "README.md").read_text()
    assert "**2.9 %** (95 % CI 2.4-3.4 %; 143 of 5,000 pairs wrong)" in card


@pytest.mark.parametrize("name", UNTRAINED_DIGITS)
def test_untrained_digit_outputs_say_so_on_cards_and_sidecars(name):
    from pairzoo.cards import export_metadata
    from pairzoo.zoo import release_spec

    card = (release_dir(name) / "README.md").read_text()
    assert "digit outputs untrained" in card and "class probabilities of the first" not in card
    info = release_info(name)
    assert f"{info['metrics']['mnist_test']['digit_accuracy']:g} %" not in card
    facts = export_metadata(release_spec(name).preset.model, name, info["metrics"], "release")
    assert facts["digit_outputs_trained"] is False
    assert facts["outputs"]["digit_a"].startswith("(N, 10) UNTRAINED")


def test_only_entries_without_a_digit_loss_are_marked_untrained():
    from pairzoo.zoo import release_spec

    marked = [name for name in list_models() if "digit outputs untrained"
              in (release_dir(name) / "README.md").read_text()]
    assert marked == UNTRAINED_DIGITS
    assert all(release_spec(name).preset.model.aux_weight == 0 for name in marked)


def test_sidecars_carry_the_preprocessing_and_intervals():
    from pairzoo.cards import export_metadata
    from pairzoo.zoo import release_spec

    info = release_info("siamese_vgg_aug")
    facts = export_metadata(release_spec("siamese_vgg_aug").preset.model, "siamese_vgg_aug",
                            info["metrics"], "release")
    assert facts["input"]["preprocessing"]["pooling"] == {"op": "mean", "size": [2, 2],
                                                          "stride": [2, 2]}
    assert "2x2 mean" in facts["input"]["how"] and "white digit on black" in facts["input"]["how"]
    low, high = facts["metrics"]["mnist_test"]["test_error_ci95"]
    assert low < info["metrics"]["mnist_test"]["test_error"] < high
    assert facts["digit_outputs_trained"] is True


def test_cards_only_rewrites_cards_and_nothing_else(pairzoo_cli, tmp_path, monkeypatch):
    import shutil

    from pairzoo.zoo import sha256_of

    root = tmp_path / "releases"
    shutil.copytree(release_dir("siamese_linear"), root / "siamese_linear")
    monkeypatch.setattr("pairzoo.zoo.releases_root", lambda: root)
    card = root / "siamese_linear" / "README.md"
    card.write_text("an old card\n")
    before = {p.name: sha256_of(p) for p in (root / "siamese_linear").iterdir()}
    out = pairzoo_cli("release", "siamese_linear", "--cards-only")
    assert "1 cards rewritten" in out.stdout
    after = {p.name: sha256_of(p) for p in (root / "siamese_linear").iterdir()}
    assert card.read_text() == release_card("siamese_linear")
    assert {k for k in before if before[k] != after[k]} == {"README.md"}


def test_evaluate_says_which_figure_is_recorded_and_which_is_measured_now(pairzoo_cli):
    """The header gave the card's 5,000-pair figure, the table a new 1,000-pair one, unlabelled."""
    out = " ".join(pairzoo_cli("evaluate", "siamese_linear", "--pairs", "100").stdout.split())
    assert "5,000 MNIST test-split pairs (recorded)" in out
    assert "measured now: siamese_linear on 100 pairs" in out
    assert "digit_accuracy (outputs untrained)" in out  # no digit loss: chance level
