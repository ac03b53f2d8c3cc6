"""Stops a local Ray instance when the process that started it ends, however it ends.

Ray ties gcs_server and raylet to the driver (the kernel kills them when it dies), but not the
agents raylet starts: after `kill -9` of the driver, the dashboard and runtime-env agents were
seen to stay, one of them listening, and to ignore SIGTERM. So the driver starts this small
process first (`Watchdog`), in a session of its own (a signal to the driver's process group
does not end it), and holds the only write end of a pipe to its stdin. The pipe closes when
the driver has stopped the instance (`Watchdog.stop`) or has died (kill -9 included); this
process then ends every process of the instance still alive (SIGTERM, then SIGKILL after a
grace period), removes the instance's folder unless the driver asked to keep it, and exits.

A process belongs to the instance when either
- it holds a file open in the instance's own folder (Ray's `_temp_dir`, one per instance, so
  its sessions, sockets and logs; every Ray process has its stdout and stderr there), or
- its environment carries PAIRZOO_RAY_INSTANCE=<the tag>, which the driver sets while ray.init
  starts the instance (`Watchdog.mark`). Not enough alone: Ray's processes rename themselves
  (setproctitle), which can overwrite the environment /proc shows.
The driver and this process are never counted, whatever they hold.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

INSTANCE_ENV = "PAIRZOO_RAY_INSTANCE"
GRACE_SECONDS = 3.0
KEEP = b"keep"  # the driver's word for "leave the folder: its logs explain a failure"


class Watchdog:
    """The driver's side: start before ray.init, `mark()` around it, `stop()` after
    ray.shutdown (or let the driver's death stop it)."""

    def __init__(self, folder: Path):
        self.folder, self.tag = Path(folder), secrets.token_hex(8)
        env = {k: v for k, v in os.environ.items() if k != INSTANCE_ENV}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pairzoo.experiments.ray_watchdog", self.tag,
             str(self.folder), str(os.getpid())],
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

    def stop(self, keep_folder: bool = False, timeout: float = 4 * GRACE_SECONDS) -> None:
        """Close the pipe and wait while the watchdog ends what is left of the instance."""
        with contextlib.suppress(OSError):
            if keep_folder:
                self._process.stdin.write(KEEP)
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


def instance_processes(psutil, tag: str, folder: Path, spared: set[int]) -> list:
    """Every live process of the instance (see the module's docstring), but `spared`."""
    inside = os.path.realpath(folder) + os.sep  # as /proc shows it (macOS: /private/tmp)
    found = []
    for process in psutil.process_iter():
        if process.pid in spared:
            continue
        with contextlib.suppress(psutil.Error, OSError):  # gone, a zombie, or not ours
            if (any(f.path.startswith(inside) for f in process.open_files())
                    or process.environ().get(INSTANCE_ENV) == tag):
                found.append(process)
    return found


def end_instance(tag: str, folder: Path, spared: set[int], rounds: int = 3) -> None:
    """SIGTERM every process of the instance, SIGKILL those alive after the grace period;
    again, for a process one of them started meanwhile (raylet starting a worker)."""
    psutil = _psutil()
    for _ in range(rounds):
        processes = instance_processes(psutil, tag, folder, spared)
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
    tag, folder, driver = argv[1], Path(argv[2]), int(argv[3])
    said = b""
    while chunk := sys.stdin.buffer.read(4096):  # until the driver closes the pipe, or dies
        said += chunk
    end_instance(tag, folder, spared={os.getpid(), driver})
    if KEEP not in said:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
