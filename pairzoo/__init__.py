"""pairzoo: a Keras 3 model zoo for pair-comparison networks (is the first digit <= the second?).

    import pairzoo
    pairzoo.list_models("siamese_*")
    model = pairzoo.create_model("siamese_fullyconv", share_weights=False)
    result = pairzoo.train("siamese_fullyconv", seed=0)      # -> RunResult (model, metrics, ...)
    answers = pairzoo.predict_pairs("siamese_vgg_aug", "pairs.npy")   # many pairs at once

Names resolve lazily, so `import pairzoo` (and `pairzoo --help`) stays free of TensorFlow until
something that needs it is used. Once Keras is imported (by pairzoo or by you), pairzoo's model
and layer classes are registered with it, so `keras.saving.load_model("runs/.../model.keras")`
works after a plain `import pairzoo`.
"""

from __future__ import annotations

import importlib

from pairzoo._startup import prepare

prepare()  # imports nothing: arranges TensorFlow's start and Keras's registration of our classes

__version__ = "0.1.0"

_API = {
    "list_models": "pairzoo.zoo",  # the registry's names, with pretrained=
    "get_preset": "pairzoo.registry",
    "create_model": "pairzoo.zoo",  # the registry's models, with weights=
    "load_pairs": "pairzoo.data",
    "PairSet": "pairzoo.data",
    "train": "pairzoo.training",
    "save_run": "pairzoo.training",
    "RunResult": "pairzoo.training",
    "evaluate": "pairzoo.evaluation",
    "load_model": "pairzoo.runs",
    "predict_pairs": "pairzoo.batch",
    "PairzooError": "pairzoo.errors",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'pairzoo' has no attribute {name!r}")
