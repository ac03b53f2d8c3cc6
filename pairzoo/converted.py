"""A zoo name's answer without TensorFlow: its release weights converted once to TFLite and run
on ai-edge-litert (the `litert` extra), cached and hash-checked.

    runner, how = release_runner("siamese_vgg_aug")   # (N, 2, 14, 14) -> {output: array}

`import tensorflow` takes ~9 s on a small machine, LiteRT ~0.7 s, so `pairzoo predict NAME` and
`pairzoo.predict_pairs(NAME, ...)` answer from a converted file when LiteRT is installed.

Converted on first use, not shipped: the package keeps one weights file per entry, covered by
its packaged sha256 (the trust anchor); a converted file is derived from exactly those weights
by this machine's converter. Shipping one per entry would add ~9 MB of flatbuffers to the
package for an optional extra and go stale with every weights or converter change. The
price is one slow call per entry and machine: TensorFlow loads, the release's weights are
hash-checked, built and converted (`pairzoo export`'s own conversion, builtin ops only).

The cache ($PAIRZOO_CACHE/converted/) names each file by the entry, its weights' sha256 and the
pairzoo version, so new weights or a new pairzoo never reuse an old file. Each file is written
aside and renamed into place, with its own sha256 in a `.sha256` file written the same way
after it; a file whose digest is missing or does not match (cut short, damaged) is converted
again. Without ai-edge-litert, or if conversion fails, the release runs on Keras as before.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pairzoo.destinations import write_aside
from pairzoo.errors import PairzooError, warn

CACHE_SUBDIR = "converted"


def litert_available() -> bool:
    return importlib.util.find_spec("ai_edge_litert") is not None


def converted_path(name: str) -> Path:
    """Where `name`'s converted release lives: keyed by its weights' sha256 and pairzoo's
    version."""
    from pairzoo import __version__
    from pairzoo.data.sources import cache_dir
    from pairzoo.zoo import release_info

    weights = release_info(name)["sha256"]
    return cache_dir() / CACHE_SUBDIR / f"{name}-{weights[:16]}-pairzoo{__version__}.tflite"


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def cached_tflite(name: str) -> Path | None:
    """The converted file if it is there and matches its recorded sha256, else None."""
    from pairzoo.zoo import sha256_of

    path = converted_path(name)
    digest = _digest_path(path)
    try:
        recorded = digest.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return path if path.is_file() and sha256_of(path) == recorded else None


def _write_atomically(path: Path, data: bytes) -> None:
    write_aside(path, lambda tmp: tmp.write_bytes(data))


def convert_release(name: str) -> Path:
    """Convert `name`'s release (hash-checked weights) to a float TFLite file in the cache."""
    import hashlib

    from pairzoo.export.tflite import convert_to_tflite
    from pairzoo.zoo import load_release_model

    flatbuffer, _ = convert_to_tflite(load_release_model(name), "none")
    path = converted_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, flatbuffer)
    # the digest last: a file without a matching digest is never used
    _write_atomically(_digest_path(path), hashlib.sha256(flatbuffer).hexdigest().encode())
    return path


def release_tflite(name: str) -> Path | None:
    """`name`'s converted release, converting it on first use; None without ai-edge-litert or
    when it does not convert (the caller runs Keras)."""
    if not litert_available():
        return None
    path = cached_tflite(name)
    if path is not None:
        return path
    from pairzoo.zoo import weights_path

    # the weights first: a mirror that fails would fail Keras too, so its one line is the
    # answer, with no conversion announced and no second fetch
    weights_path(name)
    warn(f"converting {name}'s release weights for LiteRT, once (later answers skip "
         f"TensorFlow): {converted_path(name)}")
    try:
        return convert_release(name)
    except (PairzooError, OSError) as e:
        warn(f"{name} runs on Keras: its conversion failed ({str(e).splitlines()[0][:200]})")
        return None
