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
from process_watch import (
    alive,
    descendants,
    describe,
    holding,
    new_tag,
    tagged,
    wait_until_gone,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# enough runs that the experiment is still training when the first row is stored
COMMAND = ["experiment", "--model", "siamese_argmax", "--runs", "30", "--name", "killed",
           "--no-plots", "--workers", "2", "--set=train.epochs=2", "--set=train.n_train=200",
           "--set=train.n_test=100"]
GONE_WITHIN = 30  # seconds: SIGTERM, a grace period, SIGKILL, with room for a busy machine


@pytest.fixture
def start(tmp_path):
    """Starts the experiment (extra options: the engine); a test that fails before killing it
    kills it in the end (the pool's workers and the watchdog follow)."""
    started = []

    def start_experiment(*extra: str):
        tag = new_tag()
        ray_dir = Path(tempfile.mkdtemp(prefix="pzi"))  # short: Ray's socket paths under it
        env = {**os.environ, tag[0]: tag[1], "PAIRZOO_RAY_DIR": str(ray_dir),
               "HOME": str(tmp_path)}
        env.pop("RAY_ADDRESS", None)
        store = tmp_path / "runs.jsonl"
        with (tmp_path / "err.txt").open("w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "pairzoo", *COMMAND, *extra, "--store", str(store),
                 "--out", str(tmp_path / "out")], stdout=subprocess.DEVNULL, stderr=err,
                env=env)
        started.append(process)
        return process, (tag, ray_dir), store

    yield start_experiment
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for(condition, process, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the experiment ended before it could be killed"
        assert time.monotonic() < deadline, "the experiment never reached the moment to kill"
        time.sleep(0.05)


def _stored_lines(store: Path) -> list[str]:
    return store.read_text().splitlines() if store.exists() else []


def _marked(marks) -> set[int]:
    """The processes carrying the test's tag or holding a file in its Ray folder."""
    tag, ray_dir = marks
    return tagged(tag) | holding(ray_dir)


def _kill_and_check(process, marks, store, tmp_path, signum):
    ours = descendants(process.pid) | _marked(marks)
    assert ours, "the experiment started no process"
    process.send_signal(signum)
    code = process.wait(timeout=GONE_WITHIN)
    ours_alive = lambda: _marked(marks) | {pid for pid in ours if alive(pid)}  # noqa: E731
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
    # the resource tracker and two workers
    "started": lambda process, marks, store: len(descendants(process.pid)) >= 3,
    # gcs_server, raylet and their helpers are up; the agents are still starting
    "starting": lambda process, marks, store: len(_marked(marks)) >= 5,
    # ray.init has returned: the actors exist (Ray titles an actor's process ray::CLASS)
    "running": lambda process, marks, store: any(
        _command_line(pid).startswith("ray::RunWorker") for pid in _marked(marks)),
    "training": lambda process, marks, store: bool(_stored_lines(store)),
}
SLOW = pytest.mark.slow


@pytest.mark.parametrize("signame, moment", [
    ("SIGTERM", "started"),
    ("SIGKILL", "started"),
    pytest.param("SIGTERM", "training", marks=SLOW),
    pytest.param("SIGKILL", "training", marks=SLOW),
])
def test_a_killed_experiment_leaves_no_worker_process(tmp_path, start, signame, moment):
    process, marks, store = start()
    _wait_for(lambda: MOMENTS[moment](process, marks, store), process)
    _kill_and_check(process, marks, store, tmp_path, getattr(signal, signame))


@pytest.mark.parametrize("signame, moment", [
    ("SIGKILL", "starting"),  # Ray's agents were left behind here (issue 13)
    ("SIGTERM", "starting"),  # inside ray.init, whose own SIGTERM handler is active
    ("SIGTERM", "running"),
    pytest.param("SIGKILL", "training", marks=SLOW),
    pytest.param("SIGTERM", "training", marks=SLOW),
])
def test_a_killed_ray_experiment_leaves_no_ray_process(tmp_path, start, signame, moment):
    pytest.importorskip("ray")
    process, marks, store = start("--engine", "ray")
    _wait_for(lambda: MOMENTS[moment](process, marks, store), process)
    _kill_and_check(process, marks, store, tmp_path, getattr(signal, signame))


# A driver that starts, under the watchdog's mark, a child that ignores SIGTERM and one that
# left its parent (double fork: re-parented to init); then, unmarked, one that holds a file in
# the instance's folder (as a Ray process whose renaming overwrote its environment) and one
# that has nothing to do with the instance. Then it waits to be killed.
WATCHED_DRIVER = """\
import os, subprocess, sys, time
from pathlib import Path
from pairzoo.experiments.ray_watchdog import Watchdog
folder = Path(sys.argv[1])
watchdog = Watchdog(folder)
folder.mkdir()
sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
with watchdog.mark():
    subprocess.Popen([sys.executable, "-c", stubborn])
    subprocess.Popen([sys.executable, "-c", f"import subprocess; subprocess.Popen({sleeper})"]
                     ).wait()
subprocess.Popen(sleeper, stdout=(folder / "worker.out").open("w"))
print(subprocess.Popen(sleeper).pid, flush=True)
time.sleep(600)
"""


def test_the_watchdog_ends_the_instances_processes_when_its_driver_is_killed(tmp_path):
    tag, folder = new_tag(), tmp_path / "instance"
    driver = subprocess.Popen([sys.executable, "-c", WATCHED_DRIVER, str(folder)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, tag[0]: tag[1]})
    stranger = int(driver.stdout.readline())
    children = descendants(driver.pid)  # the watchdog, the stubborn one, the file holder ...
    orphan = tagged(tag) - children - {driver.pid}  # ... and the re-parented one
    assert len(children) >= 4 and len(orphan) == 1 and holding(folder)
    driver.kill()
    driver.wait()
    left = wait_until_gone(lambda: (tagged(tag) | holding(folder)) - {stranger}, GONE_WITHIN)
    try:
        assert not left, f"outlived the driver: {describe(left)}"
        assert alive(stranger), "the watchdog ended a process not of the instance"
        assert not folder.exists()  # the instance's folder is removed with it
    finally:
        os.kill(stranger, signal.SIGKILL)
