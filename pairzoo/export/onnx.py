"""ONNX export through Keras's own `model.export(format="onnx")` (tf2onnx on TensorFlow), with
the model's labels in the file's own metadata (`metadata_props`), which onnxruntime reads
back with `session.get_modelmeta().custom_metadata_map`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.interface import INPUT_NAME, PAIR_SHAPE

NEEDS = ("tf2onnx", "onnx")


def write_onnx(model, path: Path, metadata: dict) -> None:
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise PairzooError(f"ONNX export needs {', '.join(missing)}: pip install "
                           "'pairzoo[onnx]'")
    import keras
    import onnx

    from pairzoo.export.savedmodel import unrolled_rnns

    spec = keras.InputSpec(shape=(None, *PAIR_SHAPE), dtype="float32", name=INPUT_NAME)
    with unrolled_rnns(model):
        model.export(str(path), format="onnx", input_signature=[spec], verbose=False)
    written = onnx.load(str(path))
    onnx.helper.set_model_props(written, {"pairzoo": json.dumps(metadata)})
    onnx.save(written, str(path))
    inputs = [i.name for i in written.graph.input]
    if inputs != [INPUT_NAME]:
        raise RuntimeError(f"ONNX file has inputs {inputs}; expected [{INPUT_NAME!r}]")
