"""TensorFlow SavedModel export: the `serving_default` signature apps and TF Serving load."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.interface import INPUT_NAME, PAIR_SHAPE, SIGNATURE_KEY


@contextlib.contextmanager
def unrolled_rnns(model):
    """Trace recurrent layers unrolled (their 14 row steps are static).

    TFLite lowers an RNN's while-loop only with a static batch size; unrolled, the same
    arithmetic takes any batch. Restored afterwards, so training keeps the compact loop.
    """
    import keras

    from pairzoo.models import all_layers

    rnns = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.RNN)]
    previous = [rnn.unroll for rnn in rnns]
    for rnn in rnns:
        rnn.unroll = True
    try:
        yield
    finally:
        for rnn, unroll in zip(rnns, previous, strict=True):
            rnn.unroll = unroll


def write_saved_model(model, path: Path) -> None:
    """A SavedModel whose `serving_default` takes `pair` and returns the model's named outputs.

    Written through `ExportArchive` rather than `model.export`, whose endpoint calls the model
    without `training`: layers that default to training=True (Keras's random augmentation
    layers) then augment at inference, and the served answers become random. The signature's
    input is named after the input spec, its outputs after the model's output dict keys;
    `check_signature` verifies exactly those names.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise PairzooError("SavedModel and TFLite export need the TensorFlow backend; "
                           "run with KERAS_BACKEND=tensorflow")

    def serve(pair):
        return model(pair, training=False)

    spec = keras.InputSpec(shape=(None, *PAIR_SHAPE), dtype="float32", name=INPUT_NAME)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[spec])  # also serving_default
    with unrolled_rnns(model):  # the endpoint is traced when written
        archive.write_out(str(path), verbose=False)
    check_signature(path, list(model.output_names))


def signature_names(path: Path) -> tuple[list[str], list[str]]:
    """(input names, output names) of a SavedModel's serving_default signature."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures[SIGNATURE_KEY]
    _, inputs = signature.structured_input_signature
    return sorted(inputs), sorted(signature.structured_outputs)


def check_signature(path: Path, outputs: list[str]) -> None:
    """Apps read results by name: fail loudly if the written signature's names drifted."""
    inputs, written = signature_names(path)
    if inputs != [INPUT_NAME] or written != sorted(outputs):
        raise RuntimeError(f"SavedModel signature has inputs {inputs} and outputs {written}; "
                           f"expected [{INPUT_NAME!r}] and {sorted(outputs)}")


def add_assets(path: Path, metadata: dict, card: str | None) -> None:
    """The model's labels and facts (and its card, for release weights) in the SavedModel's
    assets/ folder, where they travel with it; loaders ignore files they do not track."""
    assets = path / "assets"
    assets.mkdir(exist_ok=True)
    (assets / "pairzoo.json").write_text(json.dumps(metadata, indent=2) + "\n")
    if card is not None:
        (assets / "README.md").write_text(card)


def next_serving_version(base: Path) -> int:
    """TF Serving loads BASE/<integer>/ and serves the highest: one more than the highest."""
    versions = [int(p.name) for p in base.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1
