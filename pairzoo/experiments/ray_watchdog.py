"""Stops a local Ray instance when the process that started it ends, however it ends.

Ray ties gcs_server and raylet to the driver (the kernel kills them when it dies), but not the
agents raylet starts: after `kill -9` of a driver still starting Ray, the dashboard and
runtime-env agents stayed, one of them listening, and ignored SIGTERM. So the driver starts
this small process first (`Watchdog.start`), and:
- marks its own environment with PAIRZOO_RAY_INSTANCE=<a random tag> while ray.init starts
  the instance: every process of the instance inherits the mark, even one that re-parents to
  init, and no other process has it;
- holds the only write end of a pipe to this process's stdin. The pipe closes when the driver
  stops the instance (`Watchdog.stop`) or dies (kill -9 included); this process then ends
  every marked process still alive (SIGTERM, SIGKILL after a grace period) and exits.
It runs in a session of its own, so a signal to the driver's process group does not end it
before it has done its work.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import subprocess
import sys

INSTANCE_ENV = "PAIRZOO_RAY_INSTANCE"
GRACE_SECONDS = 3.0


class Watchdog:
    """The driver's side: start before ray.init, `mark()` around it, `stop()` after
    ray.shutdown (or let the driver's death stop it)."""

    def __init__(self):
        self.tag = secrets.token_hex(8)
        env = {k: v for k, v in os.environ.items() if k != INSTANCE_ENV}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pairzoo.experiments.ray_watchdog", self.tag],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env=env)

    @contextlib.contextmanager
    def mark(self):
        """Processes started in this block (Ray's, and through them their children) carry
        the tag; the driver's own later children do not."""
        os.environ[INSTANCE_ENV] = self.tag
        try:
            yield
        finally:
            os.environ.pop(INSTANCE_ENV, None)

    def stop(self, timeout: float = 4 * GRACE_SECONDS) -> None:
        """Close the pipe and wait while the watchdog ends what is left of the instance."""
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _psutil():
    """psutil: installed, or the copy Ray ships (ray/thirdparty_files, which `import ray` puts
    on sys.path; importing Ray itself here would cost a second and much memory)."""
    try:
        import psutil
    except ImportError:
        ray = importlib.util.find_spec("ray")
        sys.path.insert(0, os.path.join(os.path.dirname(ray.origin), "thirdparty_files"))
        import psutil
    return psutil


def marked(psutil, tag: str) -> list:
    """Every live process (but this one) whose environment carries the tag."""
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error, OSError):  # gone, a zombie, or not ours
            if process.environ().get(INSTANCE_ENV) == tag:
                found.append(process)
    return found


def end_marked(tag: str, rounds: int = 3) -> None:
    """SIGTERM every marked process, SIGKILL those alive after the grace period; again, for a
    process one of them started meanwhile (raylet starting a worker)."""
    psutil = _psutil()
    for _ in range(rounds):
        processes = marked(psutil, tag)
        if not processes:
            return
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, alive = psutil.wait_procs(processes, timeout=GRACE_SECONDS)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(alive, timeout=GRACE_SECONDS)


def main(argv: list[str]) -> int:
    tag = argv[1]
    while sys.stdin.buffer.read(4096):  # the driver writes nothing: this waits for the close
        pass
    end_marked(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
