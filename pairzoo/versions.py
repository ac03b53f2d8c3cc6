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
