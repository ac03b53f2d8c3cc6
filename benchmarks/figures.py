"""What every benchmark here prints and writes: one figure per line, headed by the date, the
machine and the load, kept for its results file."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


class Figures:
    """Call it with a line: printed at once (a long benchmark shows its progress) and kept."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)

    def header(self) -> None:
        cores = os.cpu_count() or 1
        self(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        self(f"machine {platform.machine()}, {cores} cores, {cpu_model()}")

    def write(self, path: Path, title: str, intro: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {title}\n\n{intro}\n\n"
                        + "\n".join(f"- {line}" for line in self.lines) + "\n")
        print(f"wrote {path}")
