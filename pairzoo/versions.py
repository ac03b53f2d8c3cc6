"""The versions a run records: read from the installed packages' metadata, so that code which
must not import the backend (experiment machinery, fake trainers in tests) can record them."""

from __future__ import annotations

import contextlib
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("pairzoo", "keras", "tensorflow-cpu", "tensorflow", "jax", "torch", "numpy")


def installed_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    return versions


BACKEND_PACKAGES = {"tensorflow": ("tensorflow-cpu", "tensorflow"), "jax": ("jax",),
                    "torch": ("torch",)}


def keras_backend_name() -> str:
    """The backend Keras will use, as Keras decides it (KERAS_BACKEND, else keras.json in
    KERAS_HOME or ~/.keras, else TensorFlow), without importing Keras."""
    import json
    import os
    from pathlib import Path

    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return json.loads((home / "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def version_line() -> str:
    """'pairzoo 0.1.0, keras 3.15.1, backend tensorflow (tensorflow-cpu 2.21.0)'."""
    versions = installed_versions()
    backend = keras_backend_name()
    package = next((p for p in BACKEND_PACKAGES.get(backend, (backend,)) if p in versions),
                   None)
    detail = f" ({package} {versions[package]})" if package else " (not installed)"
    return (f"pairzoo {versions.get('pairzoo', '?')}, keras {versions.get('keras', '?')}, "
            f"backend {backend}{detail}")

