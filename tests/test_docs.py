"""Every command in README.md and docs/ runs as written.

Commands are extracted from ```bash blocks and from indented lines that start with `pairzoo`;
each `pairzoo` command runs through the entry function, in a folder of its own where
`examples/` and `../shared/` are what they are beside the repository. Long commands run cut
down (the edits are in CHEAP); the ones that cannot run here are listed in SKIP with the reason.
Python blocks run too, except those listed, in this process (TensorFlow is imported once, not
per block) with `pairzoo.train` cut down the same way.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TINY_TRAIN = ["--epochs", "1", "--set", "train.n_train=100", "--set", "train.n_test=100"]
TINY = {"train.epochs": 1, "train.n_train": 100, "train.n_test": 100}  # the same, from Python

# (substring of a command) -> why it does not run in the test suite
SKIP = {
    "python3 -m venv": "the set-up chain: CI's .ci/run runs it on a clean clone",
    "pip install": "installs packages",
    "pairzoo release": "trains seeds 0-4 of every entry (about an hour); tests/test_zoo.py "
                       "checks what it wrote",
    "--engine ray": "starts Ray; tests/test_ray.py runs it",
    "docker run": "no Docker engine on these machines",
    "nohup": "a background job of hours",
    "ray start": "starts a Ray cluster; tests/test_ray.py runs one",
    "benchmarks/": "benchmarks take minutes on a quiet machine",
    "pytest": "the test suite itself",
    "--workers": "spawns worker processes for a whole report; tests/test_engines.py runs the pool",
}


def cheap(argv: list[str]) -> list[str]:
    """The command as it runs here: training cut to one short epoch, experiments planned
    (--dry-run) rather than run."""
    if argv[:1] == ["train"]:
        argv = list(argv)
        if "--epochs" in argv:
            del argv[argv.index("--epochs"):argv.index("--epochs") + 2]
        return [*argv, *TINY_TRAIN]
    if argv[:1] in (["reproduce"], ["experiment"]) and "--dry-run" not in argv:
        return [*argv, "--dry-run"]
    return argv


def commands() -> list[tuple[str, str]]:
    """(page, command) for every command line of the pages, continuation lines joined."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            found += [(page.name, line) for line in _lines(block)]
        for line in re.findall(r"^    (pairzoo .*)$", text, re.M):
            found.append((page.name, line))
    return found


def _lines(block: str) -> list[str]:
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip()
            and not line.strip().startswith("#")]


def _strip_comment(line: str) -> str:
    """`pairzoo list   # the zoo` -> `pairzoo list`; a # inside quotes stays."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.whitespace_split, lexer.commenters = True, "#"
    return shlex.join(list(lexer))


COMMANDS = commands()


def test_the_pages_have_commands():
    pages = {page for page, _ in COMMANDS}
    assert {"README.md", "EXPORT.md", "KERAS.md"} <= pages
    assert len(COMMANDS) > 30


@pytest.fixture
def workdir(tmp_path):
    """A folder beside a `shared` link, holding copies of `examples/` and `results/`."""
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (tmp_path / "shared").symlink_to(shared)
    work = tmp_path / "work"
    work.mkdir()
    for folder in ("examples", "results"):
        shutil.copytree(ROOT / folder, work / folder)
    return work


def _chain(line: str) -> list[str]:
    return [part.strip() for part in line.split("&&")]


# EXPORT.md's commands write every format (~45 s); tests/test_export.py checks each format in
# the default run, and this page with -m slow
SLOW_PAGES = {"EXPORT.md"}


@pytest.mark.parametrize("page", [
    pytest.param(page, marks=pytest.mark.slow if page in SLOW_PAGES else ())
    for page in sorted({page for page, _ in COMMANDS})])
def test_commands_run_as_written(page, workdir, monkeypatch, capsys):
    """A page's commands in order, in one folder (a later one may use what an earlier one
    wrote, as a reader would)."""
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    ran = 0
    for line in (line for p, line in COMMANDS if p == page):
        if any(part in _strip_comment(line) for part in SKIP):  # a comment may name one
            continue
        for command in _chain(line):
            argv = shlex.split(_strip_comment(command))
            if argv[:1] == ["pairzoo"]:
                _run_pairzoo(cheap(argv[1:]), workdir, capsys)
            elif argv[:1] in (["python"], ["python3"]):
                done = subprocess.run([sys.executable, *argv[1:]], capture_output=True,
                                      text=True, cwd=workdir, timeout=600)
                assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
            else:
                pytest.fail(f"{page}: no rule to run {command!r}; add it to SKIP with why")
            ran += 1
    assert ran > 0


def _run_pairzoo(argv: list[str], workdir: Path, capsys) -> None:
    from pairzoo.cli import main

    argv = [_existing_run(a, workdir) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    assert code == 0, f"pairzoo {shlex.join(argv)}: {out.err[-2000:]}"


def _existing_run(arg: str, workdir: Path) -> str:
    """Pages write a run folder as runs/NAME/RUN, TIME-seed0 or <run>: the newest run of NAME
    that an earlier command of the test trained (or one trained now)."""
    match = re.fullmatch(r"runs/(\w+)/(RUN|TIME-seed0|<run>|\d{8}-\d{6}-seed\d+)", arg)
    if not match:
        return arg
    name = match.group(1)
    runs = sorted((workdir / "runs" / name).glob("*-seed*"))
    if not runs:
        from pairzoo.cli import main

        assert main(["train", name, *TINY_TRAIN]) == 0
        runs = sorted((workdir / "runs" / name).glob("*-seed*"))
    return str(runs[-1].relative_to(workdir))


PYTHON_SKIP = {
    "KERAS.md": "run by tests/test_keras_native.py (its folder names are examples)",
}


def python_blocks() -> list[tuple[str, str]]:
    return [(page.name, block) for page in PAGES
            for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"),
                                    re.S)]


def cheap_train(train):
    """`pairzoo.train` as a Python block runs here: one short epoch, as `cheap` does for
    `pairzoo train`."""
    def run(*args, overrides=None, **kwargs):
        return train(*args, overrides={**(overrides or {}), **TINY}, **kwargs)

    return run


@pytest.mark.parametrize("page, code", python_blocks(),
                         ids=[f"{p}:{i}" for i, (p, _) in enumerate(python_blocks())])
def test_python_block_runs(page, code, workdir, monkeypatch):
    if page in PYTHON_SKIP:
        pytest.skip(PYTHON_SKIP[page])
    if "tf.saved_model.load" in code or "Interpreter(" in code or "InferenceSession(" in code:
        pytest.skip("a fragment of an examples/ program; tests/test_export.py runs the program")
    from pairzoo import training

    monkeypatch.chdir(workdir)
    monkeypatch.setattr(training, "train", cheap_train(training.train))  # pairzoo.train
    exec(compile(code, f"{page} (python block)", "exec"), {"__name__": "__main__"})


def test_the_docs_import_pairzoo_before_keras_and_that_is_quiet():
    """`import keras` first starts TensorFlow before pairzoo can quiet it (absl, oneDNN and
    CPU-feature banners on stderr): every example imports pairzoo first. That `import pairzoo,
    keras` prints nothing is checked in a fresh process by tests/test_cli.py (the quiet start)."""
    for page in PAGES:
        for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            imports = [line.split()[1] for line in block.splitlines()
                       if line.startswith("import ") and line.split()[1] in ("keras", "pairzoo")]
            assert imports in ([], ["pairzoo"], ["pairzoo", "keras"]), (page.name, imports)
