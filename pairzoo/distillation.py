"""Distillation: one student learns from several teachers' averaged digit distributions.

A preset distils when its recipe names a teacher preset (`train.teacher`). Its run is then the
whole pipeline, and `pairzoo train NAME` runs it:

1. the teachers: `train.teachers` runs of the teacher preset on the student's own training pairs,
   seeds S, S + 1000, S + 2000, ... Each is kept as a run folder under runs/kept/ and reused
   when it is there (an interrupted pipeline resumes teacher by teacher). Teacher 0 is exactly
   the teacher preset's own run of seed S, so an ablation gets "no distillation" for free, and
   a release of the teacher preset reuses it as its candidate of that seed.
2. the student, in the fast loop: each batch is distorted once, by the teacher preset's
   augmentation; the teachers (inference mode) and the student see the same distorted digits;
   the loss is (1 - w) x the preset's own losses + w x Keras's `LogitsDistillation` (KL
   divergence at temperature T, scaled by T^2) between the teachers' averaged digit
   distributions and the student's. With `train.distill_mixup` > 0 each distorted digit is
   also blended with another (Beyer et al. 2022's function matching): the teachers' answers
   on blends carry what they know between classes, and the labels drop out (w = 1).

Why not `keras.distillation.Distiller`: it trains through `model.fit`, which costs about twice
the fast loop here (FACTS), expects a single-output student that returns logits, and feeds the
teachers undistorted batches; its loss, `LogitsDistillation`, is used as it is.

The student is kept too (a release's candidate of the same seed reuses it). Its own graph has
no augmentation and no teacher: it exports like any entry. Its run also records its first
teacher alone (`teacher_test_error`: "no distillation") and the teachers' ensemble
(`teachers_test_error`, `teachers_digit_accuracy`: "teachers alone") on its test pairs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
from keras import ops

from pairzoo.config import Preset
from pairzoo.fastpath import CompiledTrainer
from pairzoo.models import augmentation_steps, build_model

log = logging.getLogger("pairzoo")
KEPT_ROOT = Path("runs") / "kept"  # trained teachers and students, by what they learned from
TEACHER_SEED_STEP = 1000  # teacher k of a seed-S run: seed S + 1000 k
DIGITS = ("digit_a", "digit_b")
_TINY = 1e-30  # log of a probability that underflowed to 0 stays finite


def teacher_preset(preset: Preset) -> Preset:
    from pairzoo.registry import get_preset

    teacher = get_preset(preset.train.teacher)
    if not teacher.model.has_digit_outputs:
        raise ValueError(f"teacher {teacher.name} has no digit outputs to distil from")
    return teacher


def teacher_specs(spec) -> list:
    """The RunSpecs of a distilling run's teachers: the teacher preset on the student's own
    training pairs (its data seed), seeds S, S + 1000, ... (teacher 0 is that preset's own run
    of seed S)."""
    teacher = teacher_preset(spec.preset)
    data_seed = spec.seed if spec.pairs_seed is None else spec.pairs_seed
    return [spec.replace(preset=teacher, seed=spec.seed + TEACHER_SEED_STEP * k,
                         pairs_seed=spec.pairs_seed if k == 0 else data_seed, init_from=None)
            for k in range(spec.preset.train.teachers)]


def kept_folder(spec, root: Path = KEPT_ROOT) -> Path:
    """Where a teacher or a distilled student is kept: by what its weights depend on (preset,
    seed, training pairs), not by its test pairs, so runs that differ only in their test data
    (an experiment on the MNIST test split, a release's candidates) share them. Training is
    deterministic, so a kept model is the model that training again would give."""
    return root / spec.name / spec.replace(test_data=None).run_id


def trained_teachers(spec, train_and_keep, callbacks=None, root: Path = KEPT_ROOT) -> list:
    """Each teacher's weights: loaded from its kept folder, or trained and kept now by
    `train_and_keep(teacher_spec, callbacks, folder)` (pairzoo.training's, which this module
    does not import), shown where the student's `callbacks` show its progress, if they do."""
    from pairzoo.progress import EpochProgress
    from pairzoo.runs import load_model

    weights = []
    teachers = teacher_specs(spec)
    for k, teacher in enumerate(teachers):
        folder = kept_folder(teacher, root)
        title = (f"teacher {k + 1}/{len(teachers)} of {spec.name}: {teacher.name} "
                 f"seed {teacher.seed}")
        if (folder / "model.keras").is_file():
            log.info("pairzoo: %s (kept)", title)
        else:
            log.info("pairzoo: %s: training", title)
            shown = EpochProgress.alongside(callbacks, title, teacher.preset.train.epochs)
            train_and_keep(teacher, shown, folder)
        weights.append(load_model(folder, compile=False).get_weights())
    return weights


def ensemble(models: list[keras.Model], name: str = "teachers") -> keras.Model:
    """The models as one pair model: averaged digit distributions and the exact comparison of
    those (what an ensemble of these teachers would answer)."""
    from pairzoo.interface import INPUT_NAME, PAIR_SHAPE
    from pairzoo.layers import DigitComparison

    pair = keras.Input(PAIR_SHAPE, name=INPUT_NAME)
    outputs = [model(pair, training=False) for model in models]
    digits = {k: keras.layers.Average(name=k)([o[k] for o in outputs]) if len(outputs) > 1
              else outputs[0][k] for k in DIGITS}
    compare = DigitComparison("probabilistic", name="compare")(digits["digit_a"],
                                                               digits["digit_b"])
    return keras.Model(pair, {"compare": compare, **digits}, name=name)


class DistillingTrainer(CompiledTrainer):
    """The fast loop with teachers: one distortion per batch, seen by teachers and student."""

    def __init__(self, preset: Preset, n_train: int, n_test: int):
        super().__init__(preset, n_train, n_test)
        if not preset.model.has_digit_outputs:
            raise ValueError(f"{preset.name}: a distilled student needs digit outputs")
        teacher = teacher_preset(preset)
        self.teacher_config = teacher.model
        self.teachers = [build_model(teacher.model, name=f"teacher{k}")
                         for k in range(preset.train.teachers)]
        for model in self.teachers:
            model.trainable = False
        self.distorter = self._build_distorter()
        self.distillation = logits_distillation(preset.train.distill_temperature)
        self.distill_weight = preset.train.distill_weight
        self.mixup = preset.train.distill_mixup
        self.mixup_seed = keras.random.SeedGenerator(0, name="mixup_seed")

    def _build_distorter(self) -> keras.Model:
        """Raw pairs in, each digit distorted by the teacher preset's augmentation."""
        from pairzoo.interface import PAIR_SHAPE

        steps = augmentation_steps(self.teacher_config, raw_pixels=True)
        pair = keras.Input(PAIR_SHAPE)
        digits = []
        for side in range(2):
            image = keras.layers.Reshape((*PAIR_SHAPE[1:], 1))(pair[:, side])
            for step in steps:
                image = step(image)
            digits.append(keras.layers.Reshape(PAIR_SHAPE[1:])(image))
        return keras.Model(pair, ops.stack(digits, axis=1), name="distorter")

    def reset(self, seed: int, train, test) -> None:
        super().reset(seed, train, test)  # seeds the global RNG first
        fresh = self._build_distorter()  # its draws follow the run's seed, as the model's do
        for mine, theirs in zip(self.distorter.variables, fresh.variables, strict=True):
            mine.assign(theirs)
        self.mixup_seed.state.assign(keras.random.SeedGenerator(seed).state.value)

    def set_teachers(self, weights: list[list]) -> None:
        for model, values in zip(self.teachers, weights, strict=True):
            model.set_weights(values)

    def _forward(self, x, targets):
        x = self.distorter(x, training=True)
        if self.mixup:
            x = self._blended(x)
        taught = [teacher(x, training=False) for teacher in self.teachers]
        predictions = self.model(x, training=True)
        total, per_output = self._losses(targets, predictions)
        distilled = distillation_term(self.distillation, taught, predictions)
        total = (1 - self.distill_weight) * total + self.distill_weight * distilled
        return predictions, total, per_output


    def _blended(self, x):
        """Each digit blended with the same side's digit of the next pair in the (shuffled)
        batch: lambda x + (1 - lambda) x', lambda ~ Beta(a, a) per digit."""
        shape = (ops.shape(x)[0], 2, 1, 1)
        weight = keras.random.beta(shape, self.mixup, self.mixup, seed=self.mixup_seed)
        return weight * x + (1 - weight) * ops.roll(x, 1, axis=0)


def logits_distillation(temperature: float):
    """Keras's LogitsDistillation on both digits. The KL loss is given as an instance: by its
    string name ("kl_divergence", the default) Keras resolves it to a plain function, and then
    skips both the softmax at temperature and the T^2 scale (Keras 3.15)."""
    return keras.distillation.LogitsDistillation(
        temperature=temperature, loss={k: keras.losses.KLDivergence() for k in DIGITS})


def distillation_term(loss, teachers: list[dict], student: dict):
    """`loss` (a LogitsDistillation) between the teachers' averaged digit distributions and the
    student's, both digits. Log-probabilities stand in for logits: they differ by a constant
    per row, which the loss's softmax ignores."""
    def logits(probs):
        return ops.log(ops.maximum(probs, _TINY))

    averaged = {k: logits(ops.mean(ops.stack([t[k] for t in teachers]), axis=0)) for k in DIGITS}
    return loss.compute_loss(averaged, {k: logits(student[k]) for k in DIGITS})


def teachers_metrics(trainer: DistillingTrainer, test_pairs, batch_size: int) -> dict:
    """The ablation's free lines, on the run's own test pairs: its first teacher alone (the
    teacher preset's own run of this seed: "no distillation") and the teachers' ensemble
    ("teachers alone")."""
    from pairzoo.evaluation import evaluate

    first = evaluate(trainer.teachers[0], test_pairs, batch_size=batch_size)
    together = evaluate(ensemble(trainer.teachers), test_pairs, batch_size=batch_size)
    return {"teacher_test_error": first["test_error"],
            "teachers_test_error": together["test_error"],
            "teachers_digit_accuracy": together.get("digit_accuracy")}

