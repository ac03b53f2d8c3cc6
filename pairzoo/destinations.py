"""Checks that a command's output can be written, made before the work that produces it.

Training a run, an experiment's runs or an export takes seconds to hours, and TensorFlow takes
seconds to import: a destination that is read-only, not a folder, or on a full disk is refused
first, in one line naming the path, the cause and the option to change. Nothing is created by
a check; the writes themselves still go aside and are renamed into place, since the disk can
fill meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from pairzoo.errors import PairzooError

# Free space a destination must have before pairzoo writes there: a run folder is about 1 MB
# (the .keras model with its optimizer state, the history, the config), the largest zoo
# models' several MB, and a store row or a table a few kB; below 10 MB the disk is about to
# fill for everyone, so refusing early costs nothing worth keeping.
MIN_FREE_BYTES = 10 * 2**20


def existing_folder(path: Path) -> Path:
    """The nearest folder at or above `path` that exists: where its missing parents will be
    made."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def check_writable(path: str | Path, what: str, option: str, inside: bool = False,
                   min_free: int = MIN_FREE_BYTES) -> Path:
    """Fail unless `what` (a file or folder, with any missing parent folders) can be written at
    `path`, or, with `inside`, into the folder `path`: the nearest existing folder must be one
    this process can write in, with `min_free` bytes free, and an existing file at `path` must
    be writable. Writability is probed by making and removing a folder, which os.access cannot
    tell (a read-only mount answers "writable" to root)."""
    path = Path(path)
    parent = path if inside else path.parent
    existing = existing_folder(parent)
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        if not inside and path.is_file() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
        probe = existing / f".pairzoo-write-probe-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
        free = shutil.disk_usage(existing).free
    except OSError as e:
        raise PairzooError(f"cannot write {what} in {parent} ({e.strerror or e}); choose "
                           f"another {option}") from None
    if free < min_free:
        raise PairzooError(f"only {free // 1024:,} kB of free space in {parent}; pairzoo needs "
                           f"{min_free / 2**20:g} MB free to write {what}: free some space "
                           f"or choose another {option}")
    return path


def write_aside(path: Path, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` writes the file to a hidden name beside `path`, renamed onto it once
    complete: a full disk or a crash leaves the old file or none, never an empty or cut one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def writing(what: str, where: str | Path, option: str) -> Iterator[None]:
    """An OSError while writing `what` (a full disk, a folder made read-only meanwhile) is
    the user's to fix: one line naming the place, the cause and the option."""
    try:
        yield
    except OSError as e:
        raise PairzooError(f"cannot write {what} in {where} ({e.strerror or e}); free some "
                           f"space or choose another {option}") from None
