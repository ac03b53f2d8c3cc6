"""Release weights: every zoo entry's trained model, shipped inside the package, checked by hash.

    model = pairzoo.create_model("siamese_vgg_aug", weights="zoo")   # trained, ready
    pairzoo.list_models(pretrained=True)                               # entries with weights
    release_info("siamese_vgg_aug")["metrics"]                         # what its card says

This module composes the registry (names and presets, which know no releases) with the
releases: `create_model`, `list_models` and `zoo_rows` here are the registry's plus weights.
It imports pairzoo.registry; the registry never imports it.

A release is a folder per entry in saved_models/ (keras-hub's preset layout): config.json (the
resolved preset and seed), model.weights.h5, metadata.json (versions, parameter count, seed,
training data, date, the weights' sha256, measured metrics) and README.md (the model card).
`pairzoo release` writes them (pairzoo.release).

The sha256 in the packaged metadata.json is the trust anchor: weights are loaded only after
their hash matches it, whether they come from the package or from a mirror
(PAIRZOO_WEIGHTS_URL, or `weights="https://..."` / `weights="/a/folder"`), which
pairzoo.download fetches into a cache ($KERAS_HOME/pairzoo-weights): no more than the release's
size, within PAIRZOO_DOWNLOAD_TIMEOUT seconds. A file whose size or hash does not match is
refused with a one-line error, never loaded and never kept.

Importing this module imports no Keras: listing and reading cards stay fast.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from pairzoo import registry
from pairzoo.errors import ConfigError, PairzooError

RELEASES_PACKAGE = "pairzoo.saved_models"  # the repository's saved_models/, as package data
WEIGHTS_FILE = "model.weights.h5"
MIRROR_VARIABLE = "PAIRZOO_WEIGHTS_URL"
CACHE_SUBDIR = "pairzoo-weights"
CARD_SEED = 0  # the seed of the MNIST-test-split pairs every card is measured on


class WeightsError(PairzooError):
    """Release weights are missing, unreachable, or do not match their recorded hash."""


def releases_root() -> Path:
    return Path(str(resources.files(RELEASES_PACKAGE)))


def release_dir(name: str) -> Path:
    return releases_root() / name


def has_release(name: str) -> bool:
    return (release_dir(name) / "metadata.json").is_file()


@functools.cache
def _metadata(name: str, mtime: float) -> dict:
    path = release_dir(name) / "metadata.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path} is corrupt ({e}); reinstall pairzoo or run "
                           f"`pairzoo release {name}`") from None


def release_info(name: str) -> dict:
    """The entry's metadata.json (seed, metrics, sha256, versions, ...)."""
    path = release_dir(name) / "metadata.json"
    if not path.is_file():
        registry.get_preset(name)  # an unknown name fails with suggestions first
        raise WeightsError(f"{name} has no release weights in this install; train it "
                           f"(pairzoo train {name}) or run `pairzoo release {name}`")
    return _metadata(name, path.stat().st_mtime)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_path(name: str, source: str | None = "zoo") -> Path:
    """The verified local path of `name`'s release weights.

    `source`: "zoo" (the packaged file, or PAIRZOO_WEIGHTS_URL's mirror when that is set), or
    a mirror itself: a base URL (http(s)://, file://) or a local folder holding
    NAME/model.weights.h5."""
    expected = release_info(name)["sha256"]
    if source == "zoo":
        source = os.environ.get(MIRROR_VARIABLE) or None
    if source in (None, "zoo"):
        path = release_dir(name) / WEIGHTS_FILE
        if not path.is_file():
            raise WeightsError(f"{path} is missing; reinstall pairzoo or run "
                               f"`pairzoo release {name}`")
        actual = sha256_of(path)
        if actual != expected:
            raise WeightsError(f"{path} does not match its recorded sha256 ({actual[:12]}... "
                               f"instead of {expected[:12]}...): refused; reinstall pairzoo "
                               f"or run `pairzoo release {name}`")
        return path
    return _fetch(name, str(source), expected)


def _fetch(name: str, base: str, expected: str) -> Path:
    """A mirror's copy, fetched once into the weights cache, bounded in size (the release's
    own) and time (PAIRZOO_DOWNLOAD_TIMEOUT), kept only if its sha256 is `expected`."""
    from pairzoo.download import (
        TIMEOUT_VARIABLE,
        DownloadRefused,
        download_timeout,
        fetch_verified,
    )

    if "://" not in base:
        folder = Path(base).expanduser()
        if not folder.is_dir():
            raise WeightsError(f"weights mirror {base} is neither a URL nor a folder")
        base = folder.resolve().as_uri()
    origin = f"{base.rstrip('/')}/{name}/{WEIGHTS_FILE}"
    try:
        timeout = download_timeout()
    except ValueError as e:
        raise WeightsError(str(e)) from None
    size = release_info(name)["weights_bytes"]
    cached = _cache_dir() / f"{name}-{expected[:16]}.weights.h5"
    if cached.is_file():
        if cached.stat().st_size == size and sha256_of(cached) == expected:
            return cached
        cached.unlink()  # a damaged copy: fetched again, never loaded
    try:
        return fetch_verified(origin, cached, size, expected, timeout)
    except DownloadRefused as e:
        raise WeightsError(f"{origin} does not match {name}'s recorded sha256: refused ({e}); "
                           f"nothing was kept") from None
    except TimeoutError as e:
        raise WeightsError(f"{origin} did not arrive within {timeout:g} s ({e}); check "
                           f"{MIRROR_VARIABLE}, or raise {TIMEOUT_VARIABLE}") from None
    except OSError as e:  # URLError, HTTPError, a refused connection: the mirror is unreachable
        reason = getattr(e, "reason", None) or e.strerror or str(e) or "no answer"
        raise WeightsError(f"cannot fetch {origin} ({type(e).__name__}: "
                           f"{str(reason).splitlines()[0]}); check {MIRROR_VARIABLE} or the "
                           "weights= argument") from None


def _cache_dir() -> Path:
    """$KERAS_HOME/pairzoo-weights (~/.keras without KERAS_HOME), where keras.utils.get_file
    kept mirror copies before: copies fetched then are found again."""
    root = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    folder = root / CACHE_SUBDIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot make the weights cache {folder} ({e.strerror}); set "
                           "KERAS_HOME to a writable folder") from None
    return folder


def load_release_model(name: str, weights: str = "zoo"):
    """The entry's trained model: built from its release config, weights loaded after their
    hash is checked. Not compiled (fine-tune with `pairzoo.training.train(init_from="zoo")`,
    or compile it yourself)."""
    from pairzoo.models import build_model

    spec = release_spec(name)
    path = weights_path(name, weights)
    model = build_model(spec.preset.model, name=name)
    try:
        model.load_weights(path)
    except Exception as e:  # h5py/keras errors for a file that hashes right but does not fit
        raise WeightsError(f"cannot load {path} into {name} ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}); run "
                           f"`pairzoo release {name}`") from None
    return model


def release_spec(name: str):
    """The RunSpec the release was trained with (its config.json)."""
    from pairzoo.runs import RunSpec

    path = release_dir(name) / "config.json"
    if not path.is_file():
        release_info(name)  # the missing-release error
        raise WeightsError(f"{path} is missing; run `pairzoo release {name}`")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path} is corrupt ({e}); run `pairzoo release {name}`") from None
    return RunSpec.from_config(config, where=str(path))


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Sorted names of the zoo entries matching `pattern` (wildcards `*`, `?`, `[...]`);
    `pretrained=True`: only those with release weights in this install."""
    names = registry.list_models(pattern)
    return [name for name in names if has_release(name)] if pretrained else names


def pretrained_models() -> list[str]:
    return list_models(pretrained=True)


def create_model(name: str, weights: str | None = None, **overrides: Any):
    """Build the named zoo model, with overrides checked against the preset.

    `weights` follows keras.applications: None (the default) for fresh random weights;
    "zoo" for the entry's trained release weights (packaged, or from the PAIRZOO_WEIGHTS_URL
    mirror), or a mirror's base URL or folder. Release weights come with the release's own
    config, so they take no model overrides."""
    if weights is None:
        return registry.create_model(name, **overrides)
    if overrides:
        raise ConfigError(f"weights={weights!r} loads {name}'s release as trained; drop the "
                          f"overrides {sorted(overrides)} (or train your own variant)")
    return load_release_model(name, weights)


def card_figure(name: str) -> str:
    """'0.92 % (t10k, 5,000 pairs)': the release's test error, as `pairzoo list` shows it."""
    if not has_release(name):
        return ""
    card = release_info(name).get("metrics", {}).get("mnist_test", {})
    if "test_error" not in card:
        return ""
    return f"{card['test_error']:g} %"


def zoo_rows(pattern: str = "*") -> list[dict[str, Any]]:
    """One row per zoo entry: what `pairzoo list` and docs/ZOO.md show (TOML only, no TF)."""
    rows = []
    for name in registry.list_models(pattern):
        preset = registry.get_preset(name)
        model, recipe, source = preset.model, preset.train, preset.source
        sharing = "-" if model.family != "siamese" else ("shared" if model.share_weights
                                                          else "two towers")
        rows.append({
            "name": name,
            "family": f"{model.family}/{model.tower.kind}",
            "sharing": sharing,
            "head": model.head,
            "aux": f"{model.aux_weight:g}" if model.has_digit_outputs else "-",
            "trainable params": source.expected_params,
            "report params": source.params or None,
            "report": source.report[:3],
            "recipe": f"{recipe.optimizer} lr={recipe.learning_rate:g} "
                      f"{recipe.epochs}ep bs={recipe.batch_size}",
            "report figure": source.figure,
            "weights": "yes" if has_release(name) else "-",
            "our error": card_figure(name),  # release weights on the MNIST test split
            "notes": source.notes,
        })
    return rows
