"""Bounded, verified downloads: a file whose size and sha256 are known before it is fetched.

A mirror is someone else's server. It may send a file far larger than the one asked for, an
endless stream, or nothing at all after accepting the connection. `keras.utils.get_file` (what
pairzoo used before) reads whatever comes, with no time limit, and keeps a refused file in its
cache. Here:
- no more than the known size is read: a larger Content-Length is refused before the body, and
  a body that goes on is cut off one byte past the size;
- the whole download has a deadline, PAIRZOO_DOWNLOAD_TIMEOUT seconds (DOWNLOAD_TIMEOUT by
  default); every socket wait is bounded by the time left;
- the bytes go to a hidden file beside the target, hashed as they arrive, and are renamed onto
  the target only when size and hash match: a refusal, an error or Ctrl-C leaves no file.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import urllib.request
from pathlib import Path

TIMEOUT_VARIABLE = "PAIRZOO_DOWNLOAD_TIMEOUT"
# seconds for one file: the largest release weights are 1.6 MB, a minute even on 0.3 Mbit/s
DOWNLOAD_TIMEOUT = 60.0
BLOCK = 1 << 16


class DownloadRefused(Exception):
    """The mirror sent something else than the file: too large, too small, wrong hash."""


def download_timeout() -> float:
    """PAIRZOO_DOWNLOAD_TIMEOUT in seconds, or DOWNLOAD_TIMEOUT; ValueError if not a positive
    number."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DOWNLOAD_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{TIMEOUT_VARIABLE}={text!r} is not a positive number of seconds")
    return value


def fetch_verified(url: str, target: Path, size: int, sha256: str,
                   timeout: float | None = None) -> Path:
    """`url`'s bytes at `target`, only if they are exactly `size` bytes hashing to `sha256`.

    Raises DownloadRefused (wrong content), TimeoutError (past the deadline), or the OSError
    urllib raises for an unreachable mirror (URLError, HTTPError)."""
    timeout = download_timeout() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            if announced is not None and announced.strip().isdigit() \
                    and int(announced) != size:
                raise DownloadRefused(f"it is {int(announced):,} bytes, not {size:,}")
            digest = _copy(response, partial, size, deadline)
        if digest != sha256:
            raise DownloadRefused(f"its sha256 is {digest[:12]}..., not {sha256[:12]}...")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _copy(response, partial: Path, size: int, deadline: float) -> str:
    """Reads at most size + 1 bytes into `partial`, each socket wait bounded by the time left;
    returns their sha256."""
    digest, received = hashlib.sha256(), 0
    with open(partial, "wb") as out:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{received:,} of {size:,} bytes arrived in time")
            _set_socket_timeout(response, left)
            # read1: one socket read at most (read(n) waits for all n bytes, however slowly
            # they trickle in)
            block = response.read1(min(BLOCK, size + 1 - received))
            if not block:
                break
            received += len(block)
            if received > size:
                raise DownloadRefused(f"it goes on past {size:,} bytes")
            digest.update(block)
            out.write(block)
    if received != size:
        raise DownloadRefused(f"it ended after {received:,} of {size:,} bytes")
    return digest.hexdigest()


def _set_socket_timeout(response, seconds: float) -> None:
    """urlopen's timeout bounds each socket wait, not the whole; a server that trickles a byte
    just within it would never end, so each wait gets only the time left. (file:// responses
    have no socket.)"""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(seconds)

