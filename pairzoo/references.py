"""What a user means by a model name on the command line: a zoo entry (its release weights),
a run folder, or a `.keras` file; and what can be said about it ("which weights, how good").

    ref = resolve_model("siamese_vgg_aug")      # or "runs/siamese_fullyconv/2026...-seed0"
    print(ref.describe())   # siamese_vgg_aug release weights (seed 2): 0.9 % test error on ...
    model = ref.load()

Importing this module imports no Keras.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.runs import RunSpec, model_path, read_run_spec


@dataclass(frozen=True)
class ModelRef:
    kind: str  # "release", "run" (a run folder) or "file" (a bare .keras file)
    name: str  # the zoo entry (a bare file: its model's name is known only once loaded)
    spec: RunSpec | None
    path: Path | None = None  # run folder or .keras file; None for a release
    metrics: dict = field(default_factory=dict)  # what is known of its test error

    def load(self, compile: bool = False):
        if self.kind == "release":
            from pairzoo.zoo import load_release_model

            return load_release_model(self.name)
        from pairzoo.runs import load_model

        return load_model(self.path, compile=compile)

    def describe(self) -> str:
        """One line: which weights, and how good they are measured to be."""
        if self.kind == "release":
            seed = f" (seed {self.spec.seed})" if self.spec else ""
            return f"{self.name} release weights{seed}: {_quality(self.metrics)}"
        what = "run" if self.kind == "run" else "model file"
        seed = f", seed {self.spec.seed}" if self.spec else ""
        return f"{what} {self.path}{seed}: {_quality(self.metrics)}"


def _quality(metrics: dict) -> str:
    if "mnist_test" in metrics:
        card = metrics["mnist_test"]
        return (f"{card['test_error']:g} % test error on {card['pairs']:,} MNIST test-split "
                "pairs")
    if "embedded_test" in metrics:
        metrics = metrics["embedded_test"]
    if metrics.get("test_error") is not None:
        count = f"{metrics['pairs']:,} " if "pairs" in metrics else ""
        return f"{metrics['test_error']:g} % test error on its {count}test pairs"
    return "no test error recorded"


def resolve_model(name_or_path: str | Path) -> ModelRef:
    """An existing path is a run folder or .keras file; otherwise a zoo name, which means its
    release weights."""
    path = Path(name_or_path)
    if path.exists():
        keras_file = model_path(path)  # a folder without model.keras fails here, with the fix
        folder = path if path.is_dir() else path.parent
        spec = read_run_spec(path)
        metrics = _read_metrics(folder / "metrics.json") if spec else {}
        kind = "run" if path.is_dir() or (spec and path.name == "model.keras") else "file"
        return ModelRef(kind, spec.name if spec else _saved_model_name(keras_file), spec, path,
                        metrics)
    from pairzoo.registry import get_preset
    from pairzoo.zoo import release_info, release_spec

    name = str(name_or_path)
    if any(sep in name for sep in ("/", "\\")) or name.endswith((".keras", ".tflite", ".onnx")):
        raise PairzooError(f"no model at {name}: give a run folder, a .keras file or a zoo "
                           "name (see `pairzoo list`)")
    get_preset(name)  # unknown names fail with suggestions
    info = release_info(name)
    return ModelRef("release", name, release_spec(name), None, info.get("metrics", {}))


def _read_metrics(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _saved_model_name(keras_file: Path) -> str:
    """The model's own name inside a .keras file (its config, read without loading weights):
    what a bare file or a folder without config.json is called; else the file's stem."""
    import zipfile

    try:
        with zipfile.ZipFile(keras_file) as archive:
            name = json.loads(archive.read("config.json"))["config"]["name"]
        return name if isinstance(name, str) and name else keras_file.stem
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return keras_file.stem  # a damaged file is refused when it is loaded, with the fix
