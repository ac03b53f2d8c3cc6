"""One 40-run grid on every engine, side by side: wall time, and whether the rows agree.

    pip install -e ".[cpu,ray]" && python benchmarks/bench_engines.py

The grid: siamese_argmax and siamese_fullyconv x weight sharing on/off x 10 seeds, the presets'
full recipes. Each engine runs it from an empty store through the real CLI, one after the other
(local: this process; pool: --workers 2; ray: a local Ray instance, one actor per CPU).
Prints one figure per line and writes benchmarks/results/engines.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
GRID = ["experiment", "--model", "siamese_argmax", "--model", "siamese_fullyconv",
        "--grid", "share_weights=true,false", "--runs", "10", "--name", "grid40", "--no-plots"]
ENGINES = {"local": [], "pool": ["--workers", "2"], "ray": ["--engine", "ray"]}


def main() -> None:
    lines: list[str] = []

    def figure(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    figure(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    figure(f"machine {platform.machine()}, {os.cpu_count()} cores")
    figure(f"load average at start {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="pairzoo-engines-"))
    walls, rows = {}, {}
    for engine, options in ENGINES.items():
        store = work / f"{engine}.jsonl"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pairzoo", *GRID, *options, "--store", str(store),
                        "--out", str(work / engine)], check=True, capture_output=True)
        walls[engine] = time.perf_counter() - start
        rows[engine] = {r["run_id"]: r for r in map(json.loads, store.read_text().splitlines())}
        figure(f"{engine}: 40 runs in {walls[engine]:.1f} s "
               f"({walls['local'] / walls[engine]:.2f}x the local engine)")
    for engine in ("pool", "ray"):
        same = sum(rows[engine][k]["test_error"] == r["test_error"]
                   for k, r in rows["local"].items())
        figure(f"{engine}: {same} of {len(rows['local'])} runs give the local engine's "
               "test error exactly")
    out = HERE / "results" / "engines.md"
    out.write_text("# Engines (benchmarks/bench_engines.py)\n\n"
                   + "\n".join(f"- {line}" for line in lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
