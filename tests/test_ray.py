"""The Ray engine on a real local instance, started and stopped by each test.

Each test's Ray lives in its own short temporary folder (PAIRZOO_RAY_DIR) with HOME pointed at
a temporary one, so the test also shows that Ray writes nothing to ~/.ray or ~/ray_results,
and `ray.shutdown()` stops only the processes this instance started.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from pairzoo.experiments.engines import make_dispatcher  # noqa: E402
from pairzoo.experiments.runner import run_experiment  # noqa: E402
from pairzoo.experiments.store import ResultsStore  # noqa: E402

TINY = {"train.epochs": 1, "train.n_train": 100, "train.n_test": 100}


def listening() -> set[tuple[str, int]]:
    """Every listening TCP socket on the machine, as (address, port)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                address, port = fields[1].split(":")
                found.add((_address(address), int(port, 16)))
    return found


def _address(hex_address: str) -> str:
    """/proc's hex address (32-bit words in host order, little-endian here) as text."""
    raw = b"".join(bytes.fromhex(hex_address[i:i + 8])[::-1]
                   for i in range(0, len(hex_address), 8))
    return str(ipaddress.ip_address(raw))


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None
                              and ip.ipv4_mapped.is_loopback)


@pytest.fixture
def ray_env(tmp_path, monkeypatch):
    ray_dir = Path(tempfile.mkdtemp(prefix="pzr"))  # short: Ray's socket paths live under it
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PAIRZOO_RAY_DIR", str(ray_dir))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield {"ray_dir": ray_dir, "home": home}
    assert not (home / ".ray").exists() and not (home / "ray_results").exists()
    shutil.rmtree(ray_dir, ignore_errors=True)


def rows(path: Path) -> dict[str, dict]:
    return {row["run_id"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_ray_engine_gives_the_local_engines_rows_and_listens_on_loopback_only(
        tmp_path, ray_env, pairzoo_cli):
    grid = ["experiment", "--model", "siamese_argmax", "--model", "siamese_fullyconv",
            "--runs", "2", "--name", "tiny", "--no-plots",
            *[f"--set={k}={v}" for k, v in TINY.items()]]
    local = tmp_path / "local.jsonl"
    pairzoo_cli(*grid, "--store", str(local), "--out", str(tmp_path / "local"))

    before = listening()
    on_ray = tmp_path / "ray.jsonl"
    command = [sys.executable, "-m", "pairzoo", *grid, "--engine", "ray", "--workers", "2",
               "--store", str(on_ray), "--out", str(tmp_path / "ray")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    opened = set()
    while process.poll() is None:  # watch every socket Ray opens while it runs
        opened |= listening() - before
        time.sleep(0.1)
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert opened, "Ray listened on nothing: the watch saw no instance"
    beyond = {(a, port) for a, port in opened if not is_loopback(a)}
    assert not beyond, f"listening beyond loopback: {beyond}"
    assert not (listening() - before), "Ray left listening sockets behind"

    expected, got = rows(local), rows(on_ray)
    assert set(got) == set(expected) and len(got) == 4
    for run_id, row in got.items():
        assert row["test_error"] == expected[run_id]["test_error"], row["cell_label"]
        assert row["pid"] != expected[run_id]["pid"]
    assert "tiny" in out  # the same table is printed
    token = ray_env["ray_dir"] / "auth_token"
    assert token.is_file() and oct(token.stat().st_mode & 0o777) == "0o600"


def test_a_killed_ray_worker_has_its_run_retried(tmp_path, ray_env, monkeypatch):
    import test_engines  # the picklable fake trainers

    ray.cloudpickle.register_pickle_by_value(test_engines)  # actors cannot import tests/
    monkeypatch.setenv("PAIRZOO_TEST_MARKERS", str(tmp_path))
    store = ResultsStore(tmp_path / "runs.jsonl")
    with make_dispatcher("ray", workers=2, train_fn=test_engines.dies_once) as dispatcher:
        run_experiment(test_engines.tiny_spec(), store, dispatcher=dispatcher)
        assert ray.is_initialized()
    assert not ray.is_initialized()  # stopped the instance it started
    stored = ResultsStore(store.path).rows()
    assert len(stored) == 4 and len(list(tmp_path.glob("siamese_argmax-*"))) == 2
    assert all(row["pid"] != os.getpid() for row in stored)


@pytest.mark.parametrize("address, phrase", [
    ("127.0.0.1:1", "no Ray cluster answers at 127.0.0.1:1"),
    ("nonsense", "is not HOST:PORT"),
])
def test_a_wrong_cluster_address_fails_at_once(address, phrase):
    from pairzoo.errors import PairzooError

    start = time.perf_counter()
    with pytest.raises(PairzooError, match=phrase):
        make_dispatcher("ray", address=address)
    assert time.perf_counter() - start < 10  # not Ray's minutes of retries
