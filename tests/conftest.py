"""Shared fixtures: every user directory points at a temporary one (simonw/llm's rule)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

T10K = Path(__file__).resolve().parents[1].parent / "shared" / "mnist_t10k"


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """One pairzoo cache per test session: the embedded digits are parsed once, not per test."""
    return tmp_path_factory.mktemp("pairzoo_cache")


@pytest.fixture(autouse=True)
def isolated_dirs(session_cache, tmp_path, monkeypatch):
    """User folders in temporary places, and no test ever reaches for the network."""
    from pairzoo.data import sources

    monkeypatch.setattr(sources, "_network_reachable", lambda *args, **kwargs: False)
    monkeypatch.setenv("PAIRZOO_CACHE", str(session_cache))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def t10k() -> Path:
    if not (T10K / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the MNIST test split is not at {T10K}")
    return T10K


@pytest.fixture(scope="session")
def tiny_pairs():
    """64 train and 64 test pairs from the embedded digits (seed 0)."""
    from pairzoo.data import load_pairs

    return load_pairs(64, 64, seed=0)


@pytest.fixture
def pairzoo_cli(capsys, monkeypatch):
    """Run `pairzoo ARGS` in this process through its entry function (pairzoo.cli.main, what
    the console script calls): exit code, stdout, stderr; assert success unless told not to.
    A few tests use `console_script` to start the real program in a new process."""
    monkeypatch.setenv("COLUMNS", "250")  # wide tables: cells are not wrapped

    def run(*args, check_ok=True):
        from pairzoo.cli import main

        capsys.readouterr()  # what the test printed before is not the command's
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
        out = capsys.readouterr()
        result = SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)
        if check_ok:
            assert code == 0, out.err
        return result

    return run


@pytest.fixture(scope="session")
def console_script():
    """Run `python -m pairzoo ARGS`, the real program, in a new process."""

    def run(*args, check_ok=True):
        env = {**os.environ, "COLUMNS": "250"}
        result = subprocess.run([sys.executable, "-m", "pairzoo", *map(str, args)],
                                capture_output=True, text=True, env=env, timeout=300)
        if check_ok:
            assert result.returncode == 0, result.stderr
        return result

    return run


# Modules whose module-scoped fixtures are expensive (test_export trains three models and
# exports them; test_predict converts one to every format): under `pytest -n`, each runs whole
# on one worker, so those fixtures are built once, not once per worker. xdist's own way
# (`--dist loadgroup` with `xdist_group` marks) does nothing with pytest 9: it renames items
# through an attribute pytest no longer reads.
ONE_WORKER_MODULES = ("tests/test_export.py", "tests/test_predict.py")
# ... but for their tests that use none of those fixtures: each goes to whichever worker is
# free (with -m slow, test_export's every-entry matrix alone took one worker ~10 minutes)
ANY_WORKER_TESTS = ("test_every_entry_in_every_format", "test_every_entry_converts_to_builtin_ops")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n N`'s default schedule (one test at a time to whichever worker is free), but a module
    of ONE_WORKER_MODULES goes to one worker as a whole (but for ANY_WORKER_TESTS)."""
    if config.getvalue("dist") != "load":
        return None  # a schedule asked for by name
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module, _, test = nodeid.partition("::")
            if module in ONE_WORKER_MODULES and test.split("[")[0] not in ANY_WORKER_TESTS:
                return module
            return nodeid

    return OneWorkerModules(config, log)
