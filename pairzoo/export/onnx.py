"""ONNX export through Keras's own `model.export(format="onnx")` (tf2onnx on TensorFlow), with
the model's labels in the file's own metadata (`metadata_props`), which onnxruntime reads
back with `session.get_modelmeta().custom_metadata_map`, and the batch dimension named
`batch` (tf2onnx leaves it `unk__N`)."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.interface import BATCH_DIM, INPUT_NAME, PAIR_SHAPE

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
    with unrolled_rnns(model), warnings.catch_warnings():
        # Keras's tf2onnx shim probes `hasattr(np, "object")`, which NumPy 2 answers with a
        # FutureWarning about its own future; nothing for the user to act on
        warnings.filterwarnings("ignore", message="In the future `np.object`",
                                category=FutureWarning)
        model.export(str(path), format="onnx", input_signature=[spec], verbose=False)
    written = onnx.load(str(path))
    name_batch_dimension(written.graph)
    onnx.helper.set_model_props(written, {"pairzoo": json.dumps(metadata)})
    onnx.save(written, str(path))
    inputs = [i.name for i in written.graph.input]
    if inputs != [INPUT_NAME]:
        raise RuntimeError(f"ONNX file has inputs {inputs}; expected [{INPUT_NAME!r}]")


def name_batch_dimension(graph) -> None:
    """tf2onnx names the variable batch dimension of the input and of each output `unk__N`:
    name it BATCH_DIM (the same N pairs in, N answers out), wherever those names appear."""
    names = {value.type.tensor_type.shape.dim[0].dim_param
             for value in [*graph.input, *graph.output]} - {""}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = BATCH_DIM
