"""The Ray engine on a real local instance, started and stopped by each test.

Each test's Ray lives in its own short temporary folder (PAIRZOO_RAY_DIR) with HOME pointed at
a temporary one, so the test also shows that Ray writes nothing to ~/.ray or ~/ray_results.
Each test marks the processes it starts with an environment tag (tests/process_watch.py) and
watches only those: never the whole machine, where another program or the sibling xdist
worker may listen on anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from process_watch import (
    TAG,
    SocketWatch,
    descendants,
    describe,
    holding,
    is_loopback,
    listening,
    new_tag,
    tagged,
    wait_until_gone,
)

ray = pytest.importorskip("ray")

from pairzoo.cli import main  # noqa: E402
from pairzoo.experiments.engines import make_dispatcher  # noqa: E402
from pairzoo.experiments.ray_engine import (  # noqa: E402
    LOCAL_ONLY_ENV,
    RayBackend,
    join_failure,
)
from pairzoo.experiments.runner import run_experiment  # noqa: E402
from pairzoo.experiments.store import ResultsStore  # noqa: E402

TINY = {"train.epochs": 1, "train.n_train": 100, "train.n_test": 100}


def grid(*models: str, runs: int = 2) -> list[str]:
    """`pairzoo experiment` over MODELS, RUNS tiny runs each."""
    return ["experiment", *[arg for model in models for arg in ("--model", model)],
            "--runs", str(runs), "--name", "tiny", "--no-plots",
            *[f"--set={k}={v}" for k, v in TINY.items()]]


GRID = grid("siamese_argmax", "siamese_fullyconv")
# one run on one actor: what the loopback test needs (a real run's row through a real actor),
# at a quarter of GRID's tracing and training. Several actors, a killed one among them, are the
# in-process test's; several real runs per node are the -m slow cluster tests'
ONE_RUN_GRID = grid("siamese_argmax", runs=1)
# a line of Ray's own logging: C++ ("[2026-11-30 12:10:30,091 W 9632 9632] rpc_client.h:153:")
# or Python ("2026-11-30 12:07:59,248\tWARNING authentication_token_setup.py:85 --")
RAY_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+ [DIWEF] |^\d{4}-\d\d-\d\d [\d:,]+\t[A-Z]+ ",
                          re.MULTILINE)


@pytest.fixture
def ray_env(tmp_path, monkeypatch):
    ray_dir = Path(tempfile.mkdtemp(prefix="pzr"))  # short: Ray's socket paths live under it
    home = tmp_path / "home"
    home.mkdir()
    tag = new_tag()
    monkeypatch.setenv("PAIRZOO_RAY_DIR", str(ray_dir))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv(*tag)  # every process started from here on carries it
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield {"ray_dir": ray_dir, "home": home, "tag": tag}
    assert not (home / ".ray").exists() and not (home / "ray_results").exists()
    shutil.rmtree(ray_dir, ignore_errors=True)


def instance(ray_env) -> set[int]:
    """The processes of the test's Ray instance, by pid (see process_watch), but this one."""
    return (tagged(ray_env["tag"]) | holding(ray_env["ray_dir"])) - {os.getpid()}


def rows(path: Path) -> dict[str, dict]:
    return {row["run_id"]: row for row in map(json.loads, path.read_text().splitlines())}


def local_rows(tmp_path, grid=GRID) -> dict[str, dict]:
    """The grid's rows from the default engine (this process, through the CLI's entry)."""
    local = tmp_path / "local.jsonl"
    assert main([*grid, "--store", str(local), "--out", str(tmp_path / "local")]) == 0
    return rows(local)


def test_ray_engine_gives_the_local_engines_rows_and_listens_on_loopback_only(
        tmp_path, ray_env):
    expected = local_rows(tmp_path, ONE_RUN_GRID)
    on_ray = tmp_path / "ray.jsonl"
    command = [sys.executable, "-m", "pairzoo", *ONE_RUN_GRID, "--engine", "ray",
               "--workers", "1", "--store", str(on_ray), "--out", str(tmp_path / "ray")]
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        try:
            with SocketWatch(lambda: instance(ray_env) | descendants(process.pid)) as watch:
                process.wait(timeout=1800)  # every socket the instance opens while it runs
        finally:
            if process.poll() is None:  # the test failed: nothing of it may stay (the
                process.kill()  # watchdog ends the Ray instance)
                process.wait()
    assert process.returncode == 0, err.read_text()
    assert watch.seen, "Ray listened on nothing: the watch saw no instance"
    assert not watch.beyond_loopback(), f"listening beyond loopback: {watch.beyond_loopback()}"
    left = wait_until_gone(lambda: instance(ray_env), timeout=15)
    assert not left, f"Ray processes outlived the command: {describe(left)}"
    assert [p.name for p in ray_env["ray_dir"].iterdir()] == ["auth_token"]  # folder removed
    assert not RAY_LOG_LINE.search(err.read_text()), err.read_text()

    got = rows(on_ray)
    assert set(got) == set(expected) and len(got) == 1
    for run_id, row in got.items():
        assert row["test_error"] == expected[run_id]["test_error"], row["cell_label"]
        assert row["pid"] != expected[run_id]["pid"]
    assert "tiny" in out.read_text()  # the same table is printed
    token = ray_env["ray_dir"] / "auth_token"
    assert token.is_file() and oct(token.stat().st_mode & 0o777) == "0o600"


def test_ray_started_from_a_process_that_imported_it_stays_on_loopback_and_retries_a_killed_worker(
        tmp_path, ray_env, monkeypatch):
    """Ray reads its "local only" switch when first imported: here it was imported (above)
    long before pairzoo starts an instance, the case that listened on every interface."""
    import ray._private.ray_constants as constants
    import test_engines  # the picklable fake trainers

    switch, variable = constants.ENABLE_RAY_CLUSTER, os.environ.get(LOCAL_ONLY_ENV)
    ray.cloudpickle.register_pickle_by_value(test_engines)  # actors cannot import tests/
    monkeypatch.setenv("PAIRZOO_TEST_MARKERS", str(tmp_path))
    store = ResultsStore(tmp_path / "runs.jsonl")
    # this process is Ray's driver here: its sockets count too (its core worker listens)
    with (SocketWatch(lambda: instance(ray_env) | {os.getpid()}) as watch,
          make_dispatcher("ray", workers=2, train_fn=test_engines.dies_once) as dispatcher):
        run_experiment(test_engines.tiny_spec(), store, dispatcher=dispatcher)
        assert ray.is_initialized()
    assert not ray.is_initialized()  # stopped the instance it started
    assert watch.seen, "Ray listened on nothing: the watch saw no instance"
    assert not watch.beyond_loopback(), f"listening beyond loopback: {watch.beyond_loopback()}"
    left = wait_until_gone(lambda: instance(ray_env), timeout=15)
    assert not left, f"Ray processes outlived the instance: {describe(left)}"
    # Ray's switch and the environment are the caller's again
    assert switch == constants.ENABLE_RAY_CLUSTER and os.environ.get(LOCAL_ONLY_ENV) == variable
    stored = ResultsStore(store.path).rows()
    assert len(stored) == 4 and len(list(tmp_path.glob("siamese_argmax-*"))) == 2
    assert all(row["pid"] != os.getpid() for row in stored)


def test_a_local_instance_that_took_a_routable_address_is_stopped_not_used(ray_env):
    """The safety net behind Ray's switch: a Ray that ignored it is refused, not trusted."""
    backend = RayBackend(2)
    stopped = []
    backend.ray = SimpleNamespace(util=SimpleNamespace(get_node_ip_address=lambda: "192.0.2.2"),
                                  shutdown=lambda: stopped.append(True))
    backend._started_ray = True
    with pytest.raises(RuntimeError, match="took the address 192.0.2.2, not loopback"):
        backend._check_on_loopback()
    assert stopped and not backend._started_ray


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


def test_joining_what_is_not_a_ray_cluster_is_one_line_within_the_deadline(
        tmp_path, ray_env, monkeypatch, capfd):
    """Something listens (the 3 s probe passes) but no Ray answers: Ray alone retried for
    minutes, printing warnings."""
    monkeypatch.setenv("PAIRZOO_RAY_JOIN_TIMEOUT", "4")
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = f"127.0.0.1:{server.getsockname()[1]}"
        start = time.monotonic()
        code = main([*GRID, "--engine", "ray", "--address", address,
                     "--store", str(tmp_path / "runs.jsonl"), "--out", str(tmp_path / "out")])
        seconds = time.monotonic() - start
    err = capfd.readouterr().err
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith(
        f"pairzoo: error: could not join the Ray cluster at {address} within 4 s"), err
    assert not RAY_LOG_LINE.search(err), err  # Ray's own lines stay out of the terminal
    assert "Traceback" not in err
    assert seconds < 4 + 20  # the probe's deadline, and no second wait after it
    assert not (tmp_path / "runs.jsonl").exists() or not (tmp_path / "runs.jsonl").read_text()
    assert not wait_until_gone(lambda: instance(ray_env), timeout=10)  # the probe too


# Ray's output when a driver resolved a loopback address to the machine's own (issue 13).
MISRESOLVED = """\
[2026-11-30 12:10:30,091 W 9632 9632] rpc_client.h:153: Failed to connect to GCS at address \
192.0.2.2:6391 within 5 seconds.
[2026-11-30 12:11:05,100 W 9632 9632] gcs_client.cc:210: Failed to get cluster ID from GCS \
server: TimedOut: Timed out while waiting for GCS to become available.
"""


# Ray 2.60's driver output joining a token-auth head without the token: its exception is named
# with its module path, and a ConnectionError comes with it.
TOKEN_REFUSED = """\
Traceback (most recent call last):
ConnectionError: Failed to connect to the GCS at 127.0.0.1:6391
During handling of the above exception, another exception occurred:
ray.exceptions.AuthenticationError: Token authentication is enabled but the authentication \
token is invalid or incorrect.. Note: RAY_AUTH_MODE is currently 'disabled' (not 'token'). \
Ensure that the token for the cluster is available in a local file
"""


@pytest.mark.parametrize("output, phrases", [
    (MISRESOLVED, ["turned it into 192.0.2.2:6391", "--node-ip-address"]),
    (MISRESOLVED.replace("192.0.2.2", "127.0.0.1"),
     ["no Ray GCS answers at 127.0.0.1:6391", "GCS port"]),
    ("Traceback ...\nRuntimeError: Version mismatch: The cluster was started with Ray 2.50",
     ["RuntimeError: Version mismatch", "node of that cluster"]),
    ("", ["no answer"]),
    # a head with token auth, joined without the token (issue 24: the dotted name was missed
    # and the ConnectionError around it reported, with the wrong fix)
    (TOKEN_REFUSED, ["AuthenticationError: Token authentication is enabled but the "
                     "authentication token is invalid or incorrect", "RAY_AUTH_TOKEN"]),
    ("\n".join(reversed(TOKEN_REFUSED.splitlines())),
     ["AuthenticationError: Token authentication", "RAY_AUTH_TOKEN"]),
])
def test_a_failed_join_names_the_address_the_reason_and_the_fix(output, phrases):
    line = join_failure("127.0.0.1:6391", output, 30)
    assert line.startswith("could not join the Ray cluster at 127.0.0.1:6391 within 30 s: ")
    assert "\n" not in line and all(phrase in line for phrase in phrases), line


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


@contextlib.contextmanager
def ray_cluster(home: Path, nodes: int, **env_extra):
    """A Ray cluster started as a user would, with `ray start` and `--node-ip-address=127.0.0.1`
    on every node (one CPU each), token auth on; yields (address, environment for a driver).
    Stopped by pid in the end, never with `ray stop`: that stops every Ray on the machine."""
    temp = Path(tempfile.mkdtemp(prefix="pzc"))  # short: Ray's socket paths live under it
    token = temp / "token"
    token.write_text(os.urandom(32).hex())
    token.chmod(0o600)
    tag = new_tag()
    env = {**os.environ, tag[0]: tag[1], "HOME": str(home), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0", **env_extra}
    env.pop("RAY_ADDRESS", None)
    ray_cli = str(Path(sys.executable).with_name("ray"))
    address = f"127.0.0.1:{_free_port()}"
    node = ["--node-ip-address=127.0.0.1", "--num-cpus=1", f"--temp-dir={temp}",
            "--disable-usage-stats"]
    head = [ray_cli, "start", "--head", f"--port={address.split(':')[1]}",
            "--include-dashboard=false", *node]
    try:
        for command in [head] + [[ray_cli, "start", f"--address={address}", *node]] * (nodes - 1):
            subprocess.run(command, env=env, capture_output=True, check=True, timeout=180)
        yield address, env
    finally:
        cluster = lambda: tagged(tag) | holding(temp)  # noqa: E731
        for pid in cluster():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in wait_until_gone(cluster, timeout=10):  # Ray ignores SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def _rows_on_cluster(tmp_path, address, env) -> tuple[dict, dict]:
    """(the local engine's rows, the cluster's rows)."""
    expected = local_rows(tmp_path)
    on_cluster = tmp_path / "cluster.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pairzoo", *GRID, "--engine", "ray", "--address", address,
         "--store", str(on_cluster), "--out", str(tmp_path / "cluster")],
        env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
    assert not RAY_LOG_LINE.search(result.stderr), result.stderr  # Ray's lines stay out
    return expected, rows(on_cluster)


@pytest.mark.slow  # two Ray nodes start (~30 s), then eight runs: over a minute on 2 cores
def test_an_experiment_on_a_two_node_cluster_gives_the_local_engines_rows(tmp_path):
    """A cluster pairzoo did not start: a head and one more node, one CPU each, so the two
    actors run one on each node. Ray 2.60 turns `--node-ip-address=127.0.0.1` into the
    machine's own address for such nodes (a second node refuses to start in Ray's "local
    only" mode), so they listen on every interface: token auth keeps the cluster to the test."""
    with ray_cluster(tmp_path, nodes=2) as (address, env):
        expected, got = _rows_on_cluster(tmp_path, address, env)
    assert set(got) == set(expected) and len(got) == 4
    for run_id, row in got.items():
        assert row["test_error"] == expected[run_id]["test_error"], row["cell_label"]
    assert len({row["pid"] for row in got.values()}) == 2  # an actor on each node


@pytest.mark.slow  # a Ray head starts (~20 s), then eight runs
def test_a_head_on_loopback_only_is_joined_at_its_loopback_address(tmp_path):
    """Issue 13's hang: a head that listens on 127.0.0.1 only (started in Ray's "local only"
    mode); the driver turned 127.0.0.1 into the machine's address and retried it for minutes."""
    with ray_cluster(tmp_path, nodes=1, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0") as (address,
                                                                                 env):
        head = tagged((TAG, env[TAG]))
        assert listening(head) and all(is_loopback(a) for _, a, _ in listening(head))
        driver_env = {k: v for k, v in env.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
        expected, got = _rows_on_cluster(tmp_path, address, driver_env)
    assert set(got) == set(expected) and len(got) == 4
    for run_id, row in got.items():
        assert row["test_error"] == expected[run_id]["test_error"], row["cell_label"]
