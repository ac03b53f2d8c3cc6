"""A killed experiment leaves no process behind and nothing half written (issue 13, class 2).

`pairzoo experiment --workers 2` (worker processes, or a local Ray instance) is started for
real, killed with SIGTERM or SIGKILL while it trains (or while Ray starts), and every process
it started must be gone within a bounded time. Its processes are found by pid, through /proc:
its descendants and everything carrying the environment tag the test gave it (a Ray process
or an orphaned worker re-parents to init, but keeps its environment).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from process_watch import alive, descendants, describe, new_tag, tagged, wait_until_gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# enough runs that the experiment is still training when the first row is stored
COMMAND = ["experiment", "--model", "siamese_argmax", "--runs", "30", "--name", "killed",
           "--no-plots", "--workers", "2", "--set=train.epochs=2", "--set=train.n_train=200",
           "--set=train.n_test=100"]
GONE_WITHIN = 30  # seconds: SIGTERM, a grace period, SIGKILL, with room for a busy machine


def _start(tmp_path: Path, *extra: str):
    tag = new_tag()
    ray_dir = Path(tempfile.mkdtemp(prefix="pzi"))  # short: Ray's socket paths live under it
    env = {**os.environ, tag[0]: tag[1], "PAIRZOO_RAY_DIR": str(ray_dir),
           "HOME": str(tmp_path)}
    env.pop("RAY_ADDRESS", None)
    store = tmp_path / "runs.jsonl"
    err = (tmp_path / "err.txt").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "pairzoo", *COMMAND, *extra, "--store", str(store),
         "--out", str(tmp_path / "out")], stdout=subprocess.DEVNULL, stderr=err, env=env)
    err.close()
    return process, tag, store


def _wait_for(condition, process, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the experiment ended before it could be killed"
        assert time.monotonic() < deadline, "the experiment never reached the moment to kill"
        time.sleep(0.05)


def _stored_lines(store: Path) -> list[str]:
    return store.read_text().splitlines() if store.exists() else []


def _kill_and_check(process, tag, store, tmp_path, signum):
    ours = descendants(process.pid) | tagged(tag)
    assert ours, "the experiment started no process"
    process.send_signal(signum)
    code = process.wait(timeout=GONE_WITHIN)
    ours_alive = lambda: tagged(tag) | {pid for pid in ours if alive(pid)}  # noqa: E731
    left = wait_until_gone(ours_alive, GONE_WITHIN)
    assert not left, f"outlived the command: {describe(left)}"
    err = (tmp_path / "err.txt").read_text()
    if signum == signal.SIGTERM:  # as Ctrl-C: a clean stop, one line, 128 + 15
        assert code == 128 + signal.SIGTERM, err
        assert err.strip().splitlines()[-1] == "pairzoo: stopped by SIGTERM", err
        assert "Traceback" not in err
    else:
        assert code == -signal.SIGKILL
    for line in _stored_lines(store):  # every stored row whole
        assert json.loads(line)["run_id"]
    assert len(_stored_lines(store)) < 30  # it was stopped, not finished


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


# When to kill. The default suite kills as soon as the workers (or Ray) exist, whatever they are
# doing then; the slow variants wait until a run is stored, i.e. workers with TensorFlow loaded
# are busy training (minutes on a busy 2-core machine).
MOMENTS = {
    "started": lambda process, tag, store: len(descendants(process.pid)) >= 3,  # tracker, 2 workers
    # gcs_server, raylet and their helpers are up; the agents are still starting
    "starting": lambda process, tag, store: len(tagged(tag)) >= 5,
    # ray.init has returned: the actors exist (Ray titles an actor's process ray::CLASS)
    "running": lambda process, tag, store: any(
        _command_line(pid).startswith("ray::RunWorker") for pid in tagged(tag)),
    "training": lambda process, tag, store: bool(_stored_lines(store)),
}
SLOW = pytest.mark.slow


@pytest.mark.parametrize("signum, moment", [
    (signal.SIGTERM, "started"),
    (signal.SIGKILL, "started"),
    pytest.param(signal.SIGTERM, "training", marks=SLOW),
    pytest.param(signal.SIGKILL, "training", marks=SLOW),
])
def test_a_killed_experiment_leaves_no_worker_process(tmp_path, signum, moment):
    process, tag, store = _start(tmp_path)
    _wait_for(lambda: MOMENTS[moment](process, tag, store), process)
    _kill_and_check(process, tag, store, tmp_path, signum)


@pytest.mark.parametrize("signum, moment", [
    (signal.SIGKILL, "starting"),  # Ray's agents were left behind here (issue 13)
    (signal.SIGTERM, "running"),
    pytest.param(signal.SIGKILL, "training", marks=SLOW),
    pytest.param(signal.SIGTERM, "training", marks=SLOW),
])
def test_a_killed_ray_experiment_leaves_no_ray_process(tmp_path, signum, moment):
    pytest.importorskip("ray")
    process, tag, store = _start(tmp_path, "--engine", "ray")
    _wait_for(lambda: MOMENTS[moment](process, tag, store), process)
    _kill_and_check(process, tag, store, tmp_path, signum)


# A driver that starts, under the watchdog's mark, one child that ignores SIGTERM and one that
# left its parent (double fork: re-parented to init), then waits to be killed.
WATCHED_DRIVER = """\
import os, signal, subprocess, sys, time
from pairzoo.experiments.ray_watchdog import Watchdog
watchdog = Watchdog()
stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
with watchdog.mark():
    subprocess.Popen([sys.executable, "-c", stubborn])
    subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.Popen("
                      "[sys.executable, '-c', 'import time; time.sleep(600)'])"]).wait()
    print("ready", flush=True)
time.sleep(600)
"""


def test_the_watchdog_ends_the_marked_processes_when_its_driver_is_killed(tmp_path):
    tag = new_tag()
    driver = subprocess.Popen([sys.executable, "-c", WATCHED_DRIVER], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, tag[0]: tag[1]})
    assert driver.stdout.readline() == "ready\n"
    orphan = tagged(tag) - descendants(driver.pid) - {driver.pid}
    assert len(descendants(driver.pid)) >= 2 and orphan  # the watchdog, the stubborn child; init's
    driver.kill()
    driver.wait()
    left = wait_until_gone(lambda: tagged(tag), GONE_WITHIN)
    assert not left, f"outlived the driver: {describe(left)}"
