"""The frontier's parts: elastic distortions, the distilling loop, and release keys that follow
each entry's own graph."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from pairzoo.layers import RandomDistortion, TrainingOnly
from pairzoo.registry import get_preset
from pairzoo.runs import RunSpec

TINY = {"train.epochs": 1, "train.n_train": 64, "train.n_test": 64, "train.teachers": 2,
        "train.batch_size": 32}


def _digits(n=8, seed=0):
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 14, 14, 1), "float32")
    images[:, 3:11, 5:9] = rng.uniform(100, 255, (n, 8, 4, 1))  # a bar in the middle
    return images


def test_distortion_is_the_identity_at_strength_zero():
    images = _digits()
    np.testing.assert_array_equal(np.asarray(RandomDistortion(seed=1)(images)), images)
    # the resampling itself moves nothing: a zero rotation's map reads every pixel in place
    still = RandomDistortion(rotation=1e-9, seed=1)(images)
    np.testing.assert_allclose(np.asarray(still), images, atol=1e-3)


def test_elastic_fields_are_smooth_independent_and_of_the_set_size():
    """Simard's fields: per image and axis independent uniform noise, smoothed by a Gaussian of
    sigma pixels, times alpha. Interior std = alpha * sqrt(1/3) * sum(taps**2) (separable
    filter); neighbouring pixels move together; the two axes do not (Keras's own layer fails
    both: one draw for both axes, no smoothing at 14x14)."""
    alpha, sigma = 8.5, 2.0
    layer = RandomDistortion(alpha=alpha, sigma=sigma, seed=3)
    field = np.asarray(layer.displacement(512, 14, 14))
    taps = layer._taps
    expected = alpha * np.sqrt(1 / 3) * np.sum(taps ** 2)
    interior = field[:, 5:9, 5:9]
    assert interior.std() == pytest.approx(expected, rel=0.1)
    rows, cols = interior[..., 0].ravel(), interior[..., 1].ravel()
    assert abs(np.corrcoef(rows, cols)[0, 1]) < 0.05
    neighbours = np.corrcoef(field[:, 6, 6, 0], field[:, 6, 7, 0])[0, 1]
    assert neighbours > 0.85
    # every image its own field
    assert not np.allclose(field[0], field[1])


def test_distortion_moves_pixels_and_keeps_the_image_range():
    images = _digits()
    out = np.asarray(RandomDistortion(1.0, 10.0, 0.1, 0.1, 6.0, 2.0, seed=0)(images))
    assert out.shape == images.shape
    assert not np.allclose(out, images)
    assert out.min() >= 0 and out.max() <= images.max() + 1e-3  # bilinear: no overshoot
    # a displaced bar keeps most of its ink
    assert out.sum() == pytest.approx(images.sum(), rel=0.25)


def test_distortion_round_trips_its_config():
    layer = TrainingOnly(RandomDistortion(1.0, 10.0, 0.1, 0.2, 4.0, 1.5, fill=-0.4, seed=7),
                         name="augment_distortion")
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    inner = again.layer
    assert (inner.shift, inner.rotation, inner.zoom, inner.shear, inner.alpha, inner.sigma,
            inner.fill, inner.seed) == (1.0, 10.0, 0.1, 0.2, 4.0, 1.5, -0.4, 7)


def test_affine_distortions_move_the_digit_as_drawn():
    """A 90-degree rotation turns a vertical bar horizontal; a 2-pixel shift bound moves the
    ink's centre by up to 2 pixels and no more; what comes in from outside is `fill`."""
    bar = np.zeros((1, 14, 14, 1), "float32")
    bar[0, 2:12, 6:8] = 255.0
    layer = RandomDistortion(rotation=90.0, seed=0)
    layer._uniform = lambda batch, bound: keras.ops.full((batch, 1, 1), bound)  # exactly 90
    turned = np.asarray(layer(bar))[0, ..., 0]
    assert turned[6:8, 2:12].mean() > 200 and turned[2:12, 6:8].sum() < turned[6:8].sum()
    ink = lambda im: np.argwhere(im[0, ..., 0] > 100).mean(axis=0)  # noqa: E731
    for seed in range(5):
        moved = np.asarray(RandomDistortion(shift=2.0, seed=seed)(bar))
        assert np.abs(ink(moved) - ink(bar)).max() <= 2.0 + 1e-6
    grey = np.asarray(RandomDistortion(shift=3.0, fill=-1.0, seed=0)(np.zeros_like(bar)))
    assert grey.min() == -1.0 and grey.max() == 0.0


def test_distortions_act_only_while_training(tiny_pairs):
    from pairzoo.models import build_model

    preset = get_preset("siamese_vgg_elastic")
    model = build_model(preset.model)
    names = {layer.name for layer in model.layers}
    assert "augment_distortion" in names
    pairs = tiny_pairs[0].take(8).pairs
    first = model(pairs, training=False)
    second = model(pairs, training=False)
    np.testing.assert_array_equal(np.asarray(first["digit_a"]), np.asarray(second["digit_a"]))
    step = next(layer for layer in model.layers if layer.name == "augment_distortion")
    image = pairs[:, :1].transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(np.asarray(step(image)), image)
    assert not np.allclose(np.asarray(step(image, training=True)), image)


def test_the_distilled_student_ships_no_augmentation_and_no_teacher():
    from pairzoo.models import build_model

    model = build_model(get_preset("siamese_vgg_distilled").model)
    assert not [layer.name for layer in model.layers if layer.name.startswith("augment")]
    assert model.count_params() < 1_000_000


def test_distillation_term_is_hintons_kl_at_temperature():
    """T^2 x KL(softmax(log p_teachers / T) || softmax(log p_student / T)), summed over the
    two digits and averaged over the batch; the teachers' distribution is their mean."""
    from pairzoo.distillation import distillation_term, logits_distillation

    rng = np.random.default_rng(0)
    probs = lambda: keras.ops.softmax(rng.normal(size=(5, 10)).astype("float32"))  # noqa: E731
    teachers = [{"digit_a": probs(), "digit_b": probs()} for _ in range(3)]
    student = {"digit_a": probs(), "digit_b": probs()}
    loss = logits_distillation(4.0)
    got = float(distillation_term(loss, teachers, student))

    def soft(p, t=4.0):
        z = np.log(np.asarray(p)) / t
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    want = 0.0
    for k in ("digit_a", "digit_b"):
        mean = np.mean([np.asarray(t[k]) for t in teachers], axis=0)
        pt, ps = soft(mean), soft(student[k])
        want += 16 * np.mean(np.sum(pt * np.log(pt / ps), axis=-1))
    assert got == pytest.approx(want, rel=1e-4)


def test_teacher_zero_is_the_teacher_presets_own_run():
    from pairzoo.distillation import teacher_specs

    spec = RunSpec(get_preset("siamese_vgg_distilled"), seed=3, test_data="idx:somewhere")
    teachers = teacher_specs(spec)
    assert [t.seed for t in teachers] == [3, 1003]
    own = RunSpec(get_preset("siamese_vgg_elastic"), seed=3, test_data="idx:somewhere")
    assert teachers[0].run_id == own.run_id
    # every teacher learns from the student's own training pairs
    own_pairs = spec.train_pairs().pairs.tobytes()
    assert {t.train_pairs().pairs.tobytes() for t in teachers} == {own_pairs}


@pytest.fixture
def tiny_teachers(monkeypatch):
    """Teachers trained briefly. A distilled run trains its teachers with the teacher preset's
    own recipe (50 epochs on 1,000 pairs: over a minute each here), whatever the student's
    overrides say; what the test checks (trained once, kept, reused, the same student) does
    not depend on how long they learn."""
    from pairzoo import registry

    preset = registry.get_preset

    def get_preset(name, **overrides):
        if name == "siamese_vgg_elastic":
            overrides = {**TINY_TEACHER, **overrides}
        return preset(name, **overrides)

    monkeypatch.setattr(registry, "get_preset", get_preset)


TINY_TEACHER = {"train.epochs": 1, "train.warmup_epochs": 0, "train.n_train": 64,
                "train.n_test": 64}


def test_a_distilled_run_trains_its_teachers_once_and_keeps_them(caplog, tiny_teachers):
    from pairzoo.distillation import KEPT_ROOT
    from pairzoo.training import train

    first = train("siamese_vgg_distilled", seed=0, overrides=TINY)
    kept = sorted(KEPT_ROOT.glob("siamese_vgg_elastic/*/model.keras"))
    assert len(kept) == 2
    assert 0 <= first.metrics["teachers_test_error"] <= 100
    assert first.metrics["teachers_digit_accuracy"] is not None
    stamps = [path.stat().st_mtime_ns for path in kept]
    with caplog.at_level("INFO", logger="pairzoo"):
        again = train("siamese_vgg_distilled", seed=0, overrides=TINY)
    assert [path.stat().st_mtime_ns for path in kept] == stamps
    assert caplog.text.count("(kept)") == 2
    # the same teachers, the same seed: the same student; kept like its teachers
    for a, b in zip(first.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(list(KEPT_ROOT.glob("siamese_vgg_distilled/*/model.keras"))) == 1


def test_a_release_reuses_kept_models_as_its_candidates(tiny_pairs):
    """A candidate whose training is kept becomes its row and run folder without training:
    the same weights, measured on the candidate's own test pairs."""
    from pairzoo.distillation import kept_folder
    from pairzoo.experiments.plan import PlannedRun
    from pairzoo.experiments.store import open_store
    from pairzoo.release import reuse_kept
    from pairzoo.training import kept_result, save_run, train

    spec = RunSpec(get_preset("siamese_argmax", **{"train.epochs": 1, "train.n_train": 64,
                                                    "train.n_test": 64}), seed=2)
    trained = train(spec)
    save_run(trained, kept_folder(spec.replace(test_data="idx:elsewhere")))  # another test set
    plan = [PlannedRun("release", "candidate", {"model": spec.name}, {}, spec,
                       keep_model_in=Path("work") / "seed2")]
    store = open_store(Path("work") / "runs.jsonl")
    assert reuse_kept(plan, store) == 1 and reuse_kept(plan, store) == 0
    (row,) = store.rows()
    assert row["run_id"] == spec.run_id and row["test_error"] == trained.metrics["test_error"]
    assert row["history"]["loss"] == pytest.approx(list(trained.history["loss"]), rel=1e-5)
    reloaded = kept_result(spec).model.get_weights()
    for a, b in zip(trained.model.get_weights(), reloaded, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (Path("work") / "seed2" / "model.keras").is_file()


def test_a_distilled_run_refuses_the_fit_loop():
    from pairzoo.errors import PairzooError
    from pairzoo.training import train

    with pytest.raises(PairzooError, match="fast loop"):
        train("siamese_vgg_distilled", overrides=TINY, loop="fit")


def test_warmup_rises_from_zero_then_follows_the_cosine():
    from pairzoo.config import apply_overrides
    from pairzoo.recipe import make_optimizer

    preset = apply_overrides(get_preset("siamese_vgg_elastic"),
                             {"train.epochs": 10, "train.warmup_epochs": 2})
    schedule = make_optimizer(preset.train)._learning_rate
    per_epoch = 32  # 1,000 pairs, batch 32
    rates = [float(schedule(step)) for step in (0, per_epoch, 2 * per_epoch, 10 * per_epoch)]
    assert rates[0] == 0.0
    assert rates[1] == pytest.approx(0.001, rel=1e-3)
    assert rates[2] == pytest.approx(0.002, rel=1e-3)
    assert rates[3] == pytest.approx(0.0, abs=1e-7)


# --- release keys ------------------------------------------------------------------------


def test_every_release_key_follows_its_entry():
    """Each shipped entry's release key is the one its preset, graph and the training code
    give now. If this fails after a change to the training loop or to a shipped graph, run
    `pairzoo release --verify`: entries whose shipped seed retrains bit for bit get their key
    brought up to date; the others need `pairzoo release` (their weights would change)."""
    from pairzoo.release import SEEDS, release_key
    from pairzoo.zoo import has_release, release_dir

    stale = []
    for name in [n for n in __import__("pairzoo").list_models() if has_release(n)]:
        metadata = json.loads((release_dir(name) / "metadata.json").read_text())
        card = metadata["metrics"].get("mnist_test")
        key = release_key(RunSpec(get_preset(name)), SEEDS, card and card["source"])
        if key != metadata["release_key"]:
            stale.append(name)
    assert not stale


def test_the_release_key_follows_the_graph_not_the_files():
    from pairzoo.config import apply_overrides
    from pairzoo.release import SEEDS, release_key

    def key(preset):
        return release_key(RunSpec(preset), SEEDS, None)

    base = get_preset("siamese_argmax")
    assert key(apply_overrides(base, {"augment_elastic": 0.0, "train.warmup_epochs": 0})) == (
        key(base))  # new options at their defaults
    assert key(apply_overrides(base, {"tower.filters": [16, 64]})) != key(base)
    assert key(apply_overrides(base, {"augment_elastic": 4.0})) != key(base)
    # a distilled entry's key follows its teachers
    student = get_preset("siamese_vgg_distilled")
    assert key(apply_overrides(student, {"train.teachers": 3})) != key(student)


def test_the_distortions_leave_no_trace_in_tflite():
    """siamese_vgg_elastic converts to builtin ops only, and to exactly the ops of the same
    tower without any augmentation (siamese_vgg_distilled's graph): nothing of the
    distortions is exported."""
    from pairzoo.export.tflite import convert_to_tflite, non_builtin_ops, tflite_ops
    from pairzoo.registry import create_model

    keras.utils.set_random_seed(0)
    distorted, _ = convert_to_tflite(create_model("siamese_vgg_elastic"))
    plain, _ = convert_to_tflite(create_model("siamese_vgg_distilled"))
    assert not non_builtin_ops(distorted)
    assert tflite_ops(distorted) == tflite_ops(plain)


def test_teachers_show_their_progress_where_the_student_shows_its_own():
    from rich.console import Console

    from pairzoo.progress import EpochProgress

    console = Console(file=None, width=80)
    student = [keras.callbacks.History(), EpochProgress("siamese_vgg_distilled", 50, console)]
    (shown,) = EpochProgress.alongside(student, "teacher 1/3", 50)
    assert shown is not student[1] and shown.console is console and shown.title == "teacher 1/3"
    assert EpochProgress.alongside([keras.callbacks.History()], "teacher 1/3", 50) == []


def test_function_matching_blends_each_digit_with_its_neighbour_and_needs_no_labels():
    """distill_mixup: lambda x + (1 - lambda) x_next per digit, lambda in [0, 1], drawn from
    the run's seed; a blend has no label, so the recipe must give the teachers all the weight."""
    from pairzoo.config import ConfigError, apply_overrides
    from pairzoo.distillation import DistillingTrainer

    with pytest.raises(ConfigError, match="distill_weight = 1"):
        apply_overrides(get_preset("siamese_vgg_distilled"), {"train.distill_mixup": 0.5})
    preset = apply_overrides(get_preset("siamese_vgg_distilled"),
                             {"train.distill_mixup": 0.5, "train.distill_weight": 1.0,
                              "train.n_train": 8, "train.n_test": 8})
    trainer = DistillingTrainer(preset, 8, 8)
    train, test = RunSpec(preset, 0).pairs()
    # pair i's digits are all i (side 0) and 10 i (side 1): a blend of pair i and pair i - 1
    x = np.stack([np.stack([np.full((14, 14), i), np.full((14, 14), 10 * i)])
                  for i in range(1, 9)]).astype("float32")
    blends = []
    for _ in range(2):
        trainer.reset(0, train, test)
        blends.append(np.asarray(trainer._blended(x)))
    np.testing.assert_array_equal(blends[0], blends[1])  # the run's seed gives its blends
    blend = blends[0]
    for i in range(8):
        for side, scale in ((0, 1), (1, 10)):
            digit = blend[i, side]
            assert np.ptp(digit) < 1e-4 * scale  # one lambda per digit
            mine, neighbour = scale * (i + 1), scale * (i if i else 8)  # the batch rolls by one
            weight = (digit[0, 0] - neighbour) / (mine - neighbour)
            assert -1e-5 <= weight <= 1 + 1e-5
    lambdas = (blend[:, 0, 0, 0] - np.roll(x[:, 0, 0, 0], 1)) / (x[:, 0, 0, 0]
                                                                  - np.roll(x[:, 0, 0, 0], 1))
    assert np.std(lambdas) > 0.05  # drawn, not fixed
