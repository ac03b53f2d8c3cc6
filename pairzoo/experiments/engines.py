"""Where an experiment's runs train: this process, a local pool of worker processes, or Ray.

make_dispatcher picks the backend: PoolBackend here, or pairzoo.experiments.ray_engine's
RayBackend (imported only when asked for); pairzoo.experiments.dispatch feeds either one.

Every engine hands finished rows back to the runner, which appends them to the store with the
store's own writer; engines never touch the store. So resume, the single-writer-per-line
guarantee and the tables are the same whichever engine trained a run.

Workers are long-lived (a process or a Ray actor each) and run many runs: importing
TensorFlow and tracing a training step cost seconds, a run of these small models about as much,
so a worker keeps its traced steps (pairzoo.fastpath caches them per architecture).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading

from pairzoo.errors import PairzooError
from pairzoo.experiments.dispatch import Dispatcher, WorkerDied
from pairzoo.experiments.plan import PlannedRun
from pairzoo.experiments.runner import train_row

ENGINES = ("local", "ray")


# --- local pool ----------------------------------------------------------------------------


def _pool_worker_init(threads: str | None, parent: int) -> None:
    exit_with_parent(parent)
    import pairzoo  # noqa: F401  (its quiet start precedes TensorFlow's import)

    if threads:
        os.environ["PAIRZOO_TF_THREADS"] = threads


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_with_parent(parent: int) -> None:
    """Make this worker process end as soon as its parent dies, however the parent
    died (kill -9 included): a worker busy with a run would otherwise finish it, and every
    later one it was given, for nobody.
    - Linux: the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG); checking
      the parent's pid afterwards closes the window in which it died before the call;
    - everywhere: a daemon thread waits on multiprocessing's parent sentinel, a pipe whose
      other end only the parent holds, and ends the process when it closes."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent is already gone
        os._exit(1)
    watched = multiprocessing.parent_process()
    if watched is not None:
        def exit_when_parent_dies():
            watched.join()
            os._exit(1)

        threading.Thread(target=exit_when_parent_dies, name="parent-watch", daemon=True).start()


class PoolBackend:
    """One single-process executor per worker slot: a dead worker breaks only its own slot,
    and each process keeps its own traced steps. `spawn`, never `fork`: TensorFlow's thread
    pools do not survive a fork."""

    def __init__(self, workers: int, device: str | None, train_fn=None, threads=None):
        self.workers, self.device, self.train_fn, self.threads = workers, device, train_fn, threads
        self._executors: dict[int, concurrent.futures.ProcessPoolExecutor] = {}

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_pool_worker_init, initargs=(self.threads, os.getpid()))

    def start(self) -> None:
        self._executors = {slot: self._executor() for slot in range(self.workers)}

    def submit(self, slot: int, run: PlannedRun):
        return self._executors[slot].submit(train_row, run, self.device, self.train_fn)

    def wait_any(self, handles):
        done, _ = concurrent.futures.wait(handles, return_when=concurrent.futures.FIRST_COMPLETED)
        handle = next(iter(done))
        try:
            return handle, handle.result()
        except concurrent.futures.process.BrokenProcessPool as error:
            return handle, WorkerDied(f"worker process died: {error}")
        except Exception as error:  # noqa: BLE001  (the run's own error, re-raised by the caller)
            return handle, error

    def restart(self, slot: int) -> None:
        self._executors[slot].shutdown(wait=False, cancel_futures=True)
        self._executors[slot] = self._executor()

    def stop(self) -> None:
        """End every worker now. After the last run nothing is in flight; after an interruption
        (Ctrl-C, SIGTERM, a run's error) a worker's run is abandoned rather than waited for, as
        a worker of Ctrl-C's process group would have been stopped too."""
        for executor in self._executors.values():
            _terminate_workers(executor)
            executor.shutdown(wait=True, cancel_futures=True)
        self._executors = {}


def _terminate_workers(executor: concurrent.futures.ProcessPoolExecutor) -> None:
    """SIGTERM the executor's processes: Python 3.14 has terminate_workers(); before it, the
    executor's own table of its processes is the only handle on them."""
    if hasattr(executor, "terminate_workers"):
        executor.terminate_workers()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):  # already gone
            process.terminate()


def make_dispatcher(engine: str = "local", *, workers: int | None = None,
                    address: str | None = None, gpus_per_run: float = 0.0,
                    device: str | None = None, train_fn=None, retries: int = 2,
                    ray_dir=None) -> Dispatcher | None:
    """The dispatcher for `engine`, or None for the default: runs in this process."""
    if engine not in ENGINES:
        raise PairzooError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise PairzooError(f"--workers must be at least 1; got {workers}")
    if engine == "local":
        if gpus_per_run:
            raise PairzooError("--gpus-per-run needs --engine ray; the local engine uses "
                               "--device gpu")
        if workers is None or workers == 1:
            return None
        # two processes on two cores: one thread pool each, or they fight over the cores
        threads = None if (os.cpu_count() or 1) > workers else "1,1"
        return Dispatcher(PoolBackend(workers, device, train_fn, threads), retries)
    from pairzoo.experiments.ray_engine import RayBackend

    backend = RayBackend(workers, address=address, gpus_per_run=gpus_per_run, device=device,
                         train_fn=train_fn, ray_dir=ray_dir)
    return Dispatcher(backend, retries)
