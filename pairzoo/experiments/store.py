"""The results store: an append-only JSON-lines file, one line per finished run.

Why this shape:
- A run is appended when it ends, as one line written by one `os.write` while holding an
  exclusive `flock` on the file, so two experiments appending at once never interleave bytes,
  and a killed experiment loses at most the run in progress. A write the disk cannot take
  whole is cut back off (`ftruncate` to the previous length): a row is whole or absent.
- Readers take a shared lock, so no writer is mid-line while they read: an unterminated last
  line is one a crash tore, never half a row still being written.
- A line torn by a crash mid-write (disk full, power loss) is terminated by the next writer and
  skipped by readers; so is any line that is not a valid row (not UTF-8, not JSON, or a JSON
  value lacking a field that tables or resuming read: `row_problem` decides). One bad line never
  makes the whole store unreadable, which is why rows are parsed line by line rather than with
  `pd.read_json(lines=True)`. Skipped lines are counted in one warning, and never rewritten
  away: the file is only ever appended to.
- Reading is incremental (from the last offset), so checking what is done before each run stays
  cheap as the store grows and sees what a concurrent experiment has just finished.

Rows carry their per-epoch history, so tables and learning curves need nothing but the store.
`fcntl` makes this POSIX-only (Linux, macOS).
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import numbers
import os
from pathlib import Path

from pairzoo.errors import PairzooError, warn
from pairzoo.experiments.spec import METRICS

# What tables, learning curves, the time model and resuming read from a row. A line missing one
# of the text fields, or holding a wrong type in any of these, is not a row; other fields are free.
ROW_TEXT = ("run_id", "experiment", "stage", "model", "cell_label")
# numbers or null (NaN is stored as null: a diverged run); absent is fine (two-channel models
# have no digit accuracy)
ROW_NUMBERS = (*METRICS, "params", "train_seconds", "epochs", "steps", "seconds")


def row_problem(row) -> str | None:
    """Why `row` (a parsed line) is not a valid store row, or None if it is one."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    for key in ROW_TEXT:
        if not isinstance(row.get(key), str) or not row[key]:
            return f"{key!r} is missing or not a non-empty string"
    if not isinstance(row.get("cell"), dict):
        return "'cell' is missing or not an object"
    for key in ROW_NUMBERS:
        if not _number_or_null(row.get(key)):
            return f"{key!r} is not a number"
    history = row.get("history", {})
    if not isinstance(history, dict) or not all(
            isinstance(values, list) and all(map(_number_or_null, values))
            for values in history.values()):
        return "'history' is not an object of number lists"
    return None


def _number_or_null(value) -> bool:
    return value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool))


def check_store_path(path: str | Path) -> Path:
    """A results store is one file; a folder at its path is a mistake worth one clear line."""
    path = Path(path)
    if path.is_dir():
        raise PairzooError(f"the results store {path} is a folder; give a file path, e.g. "
                           f"{path / 'runs.jsonl'}")
    return path


def check_appendable(path: str | Path) -> None:
    """Rows are appended only to a store: a non-empty file in which no line is a row (notes,
    a CSV, a store of another tool) is refused, not added to. Reading stops at the first row."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
        with open(path, "rb") as f:
            if any(_parse(line) is not None for line in f):
                return
    except OSError as e:
        raise PairzooError(f"cannot read the results store {path} ({e.strerror})") from e
    raise PairzooError(f"{path} is not a results store: no line in it is a run; give another "
                       "--store (or delete it, if a crash left it before its first run)")


def clean(value):
    """JSON-safe: NaN and infinities (a diverged run) become null; numpy scalars plain."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class ResultsStore:
    def __init__(self, path: str | Path):
        self.path = check_store_path(path)
        self._offset = 0
        self._rows: list[dict] = []
        self._ids: set[str] = set()
        self.bad_lines = 0  # lines skipped as not a valid row (see row_problem)

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"

    # --- writing -----------------------------------------------------------------------------

    def append(self, row: dict) -> None:
        """Append one finished run atomically with respect to every other writer."""
        row = clean(row)
        problem = row_problem(row)
        if problem:  # a bug in whatever made the row: readers would skip it, and resume retrain it
            raise ValueError(f"not a valid results-store row: {problem}")
        data = (json.dumps(row, allow_nan=False, separators=(",", ":")) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise PairzooError(f"cannot write the results store {self.path} ({e.strerror}); "
                               "give a writable --store") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # end a line torn by a crash, so ours stays whole
            try:
                # one write: a regular file takes the whole row, or less only when the disk
                # is full, and then the partial row is cut off again (whole or absent)
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)
                raise
        except OSError as e:
            raise PairzooError(f"cannot write the results store {self.path} ({e.strerror}); "
                               "free space and rerun: finished runs are kept") from e
        finally:
            os.close(fd)  # closing releases the lock

    # --- reading -----------------------------------------------------------------------------

    def refresh(self) -> list[dict]:
        """Read the lines appended since the last call; returns every row so far.

        Lines that are not valid rows are skipped and counted in `bad_lines`; newly found ones
        are reported in one warning line."""
        if not self.path.exists():
            return self._rows
        try:
            with open(self.path, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_SH)
                f.seek(self._offset)
                chunk = f.read()
        except OSError as e:
            raise PairzooError(f"cannot read the results store {self.path} ({e.strerror})") from e
        # Writers hold the exclusive lock for the whole of their one write, so under our shared
        # lock a last line without its newline is not being written: a crash tore it. It is
        # counted now, with the others, rather than after the next append ends it.
        self._offset += len(chunk)
        skipped = 0
        for line in chunk.splitlines():
            if not line.strip():
                continue
            row = _parse(line)
            if row is None:
                skipped += 1
            elif row["run_id"] not in self._ids:
                self._ids.add(row["run_id"])
                self._rows.append(row)  # a duplicate run (two processes raced) counts once
        if skipped:
            self.bad_lines += skipped
            warn(f"{skipped} unreadable line{'s' * (skipped > 1)} skipped in {self.path} "
                 "(left in the file; their runs count as not done)")
        return self._rows

    def rows(self) -> list[dict]:
        return list(self.refresh())

    def done(self, run_id: str) -> bool:
        """Whether the run is in the store, looking at what others appended since last time."""
        if run_id not in self._ids:
            self.refresh()
        return run_id in self._ids

    def frame(self):
        """Every run as a pandas DataFrame (one row per run; nested fields stay objects)."""
        import pandas as pd

        rows = self.rows()
        if not rows:
            raise PairzooError(f"the results store {self.path} holds no runs yet")
        return pd.DataFrame(rows)


def _parse(line: bytes) -> dict | None:
    """One line's row, or None if it is not a valid row."""
    try:
        # bytes: json detects the encoding; invalid UTF-8 raises UnicodeDecodeError (a
        # ValueError, as JSONDecodeError is); absurd nesting raises RecursionError
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return None if row_problem(row) else row


def open_store(path: str | Path | ResultsStore, must_exist: bool = False) -> ResultsStore:
    """The store at `path`; a ResultsStore is passed through, so that a command reading one
    store in several places reads it, and warns about its bad lines, once."""
    store = path if isinstance(path, ResultsStore) else ResultsStore(path)
    if must_exist and not store.path.is_file():
        raise PairzooError(f"no results store at {store.path}; run `pairzoo experiment` or "
                           "`pairzoo reproduce` to make one")
    return store
