"""The results store: an append-only JSON-lines file, one line per finished run.

Why this shape:
- A run is appended when it ends, as one line written by one `os.write` while holding an
  exclusive `flock` on the file, so two experiments appending at once never interleave bytes,
  and a killed experiment loses at most the run in progress.
- Readers take a shared lock and consume complete lines only, so they never see half a line.
- A line torn by a crash mid-write (disk full, power loss) is terminated by the next writer and
  skipped by readers: one bad line never makes the whole store unreadable, which is why rows
  are parsed line by line rather than with `pd.read_json(lines=True)`.
- Reading is incremental (from the last offset), so checking what is done before each run stays
  cheap as the store grows and sees what a concurrent experiment has just finished.

Rows carry their per-epoch history, so tables and learning curves need nothing but the store.
`fcntl` makes this POSIX-only (Linux, macOS).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from pathlib import Path

from pairzoo.errors import PairzooError


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
        self.path = Path(path)
        self._offset = 0
        self._rows: list[dict] = []
        self._ids: set[str] = set()
        self.bad_lines = 0

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"

    # --- writing -----------------------------------------------------------------------------

    def append(self, row: dict) -> None:
        """Append one finished run atomically with respect to every other writer."""
        data = (json.dumps(clean(row), allow_nan=False, separators=(",", ":")) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # end a line torn by a crash, so ours stays whole
            view = memoryview(data)
            while view:  # a regular file takes it all at once, unless the disk is full
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    # --- reading -----------------------------------------------------------------------------

    def refresh(self) -> list[dict]:
        """Read the lines appended since the last call; returns every row so far."""
        if not self.path.exists():
            return self._rows
        with open(self.path, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            f.seek(self._offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # complete lines only
        self._offset += end
        for line in chunk[:end].splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                self.bad_lines += 1
                continue
            if isinstance(row, dict) and row.get("run_id") not in self._ids:
                self._ids.add(row.get("run_id"))
                self._rows.append(row)  # a duplicate run (two processes raced) counts once
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


def open_store(path: str | Path, must_exist: bool = False) -> ResultsStore:
    store = ResultsStore(path)
    if must_exist and not store.path.is_file():
        raise PairzooError(f"no results store at {store.path}; run `pairzoo experiment` or "
                           "`pairzoo reproduce` to make one")
    return store
