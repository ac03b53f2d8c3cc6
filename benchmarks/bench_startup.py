"""The first seconds of a command: this checkout against an earlier commit, side by side.

    python benchmarks/bench_startup.py [--baseline f244e8c] [--repeats 5]
    python benchmarks/bench_startup.py --predict [--repeats 5]

`--predict`: a zoo name's whole answer (`pairzoo predict siamese_vgg_aug three.png seven.png`,
its release already converted for LiteRT, pairzoo[litert] installed) against
`python -c "import tensorflow"`, alternating, median of the repeats, and their ratio (the goal:
at most 0.3); writes benchmarks/results/predict_startup.md with the load before and after.

For each command, the wall time from start to its first line of output (for `train`, the
progress line that says training has begun; for a misspelt name, the error), alternating
baseline and current, median of the repeats. The baseline runs from a temporary git worktree
of the given commit with this checkout's virtual environment (its own package first on the
path). Prints one figure per line and writes benchmarks/results/startup.md with the date,
machine and load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "train.n_train=100", "--set", "train.n_test=100"]
COMMANDS = {
    "pairzoo --help": ["--help"],
    "pairzoo list": ["list"],
    "train, misspelt name (to the error)": ["train", "siamese_fulyconv"],
    "train siamese_argmax --epochs 1 (to its first progress line)":
        ["train", "siamese_argmax", "--epochs", "1", *TINY, "--out", "{tmp}/run"],
}


def first_line_seconds(argv: list[str], pythonpath: str | None, tmp: str) -> float:
    """Seconds until the command writes its first line (stdout or stderr), or ends."""
    env = {**os.environ, "COLUMNS": "120"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    argv = [a.replace("{tmp}", tmp) for a in argv]
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pairzoo", *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                               cwd=tmp)
    process.stdout.readline()
    elapsed = time.perf_counter() - start
    process.communicate()
    return elapsed


def whole_seconds(argv: list[str]) -> float:
    """Seconds from start to exit of `python ARGV`."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


PREDICT = ["-m", "pairzoo", "predict", "siamese_vgg_aug", "examples/digits/three.png",
           "examples/digits/seven.png"]
IMPORT_TF = ["-c", "import tensorflow"]


def predict_against_tensorflow(repeats: int) -> None:
    load = os.getloadavg()
    whole_seconds(PREDICT)  # converts the release once if this machine has not yet
    times = {"predict": [], "tensorflow": []}
    for _ in range(repeats):
        times["predict"].append(whole_seconds(PREDICT))
        times["tensorflow"].append(whole_seconds(IMPORT_TF))
    predict, tensorflow = (statistics.median(times[k]) for k in ("predict", "tensorflow"))
    after = os.getloadavg()
    line = (f"pairzoo predict siamese_vgg_aug (LiteRT, converted): {predict:.2f} s; "
            f"python -c 'import tensorflow': {tensorflow:.2f} s; ratio {predict / tensorflow:.2f}")
    print(line)
    out = ROOT / "benchmarks" / "results" / "predict_startup.md"
    out.write_text("\n".join([
        "# A zoo name's first answer (benchmarks/bench_startup.py --predict)", "",
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {platform.node()}, "
        f"{os.cpu_count()} cores, load average {load[0]:.2f} before and {after[0]:.2f} after; "
        f"median of {repeats} alternating runs each, whole processes.", "",
        "| command | seconds |", "|---|---|",
        f"| `pairzoo predict siamese_vgg_aug three.png seven.png` (its release on LiteRT) | "
        f"{predict:.2f} |",
        f"| `python -c \"import tensorflow\"` | {tensorflow:.2f} |",
        f"| ratio (goal: at most 0.3) | {predict / tensorflow:.2f} |", ""]))
    print(f"written: {out}")


def baseline_checkout(ref: str, into: Path) -> str:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), ref],
                   check=True, capture_output=True)
    # the editable install maps pairzoo.zoo_configs to this checkout's presets: give the old
    # package its own, found first through its own folder
    (into / "pairzoo" / "zoo_configs").symlink_to(into / "zoo_configs")
    return str(into)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="f244e8c")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--predict", action="store_true",
                        help="only a zoo name's answer against `import tensorflow`")
    args = parser.parse_args()
    if args.predict:
        predict_against_tensorflow(args.repeats)
        return
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pairzoo-startup-") as tmp:
        old = baseline_checkout(args.baseline, Path(tmp) / "baseline")
        rows = []
        try:
            for label, argv in COMMANDS.items():
                times = {"baseline": [], "now": []}
                for _ in range(args.repeats):
                    for side, path in (("baseline", old), ("now", None)):
                        with tempfile.TemporaryDirectory(dir=tmp) as work:
                            times[side].append(first_line_seconds(argv, path, work))
                before, now = (statistics.median(times[k]) for k in ("baseline", "now"))
                print(f"{label}: {before:.2f} s before, {now:.2f} s now")
                rows.append((label, before, now))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", old],
                           capture_output=True)
    after = os.getloadavg()
    out = ROOT / "benchmarks" / "results" / "startup.md"
    lines = ["# The first seconds (benchmarks/bench_startup.py)", "",
             f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {platform.node()}, "
             f"{os.cpu_count()} cores, load average {load[0]:.2f} before and {after[0]:.2f} "
             f"after; baseline {args.baseline}, median of {args.repeats} alternating runs "
             "each.", "",
             "| command | before | now |", "|---|---|---|",
             *(f"| {label} | {b:.2f} s | {n:.2f} s |" for label, b, n in rows), ""]
    out.write_text("\n".join(lines))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
