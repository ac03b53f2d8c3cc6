"""Who trains which run: the dispatcher common to every engine (local pool, Ray).

A backend (engines.PoolBackend, ray_engine.RayBackend) has worker slots; the dispatcher gives
each free slot a run of the architecture it last trained whenever some are left (its traced
steps stay warm) and yields rows as runs finish.

A worker that dies (killed, out of memory) is replaced and its run retried up to `retries`
times; a run that still fails is reported at the end, after every other run has been stored,
so nothing is lost silently and running the same command again retries it.
"""

from __future__ import annotations

import collections

from pairzoo.errors import PairzooError
from pairzoo.experiments.plan import PlannedRun


class WorkerDied(Exception):
    """The process running a run went away before returning it."""


class Dispatcher:
    """Feeds pending runs to a backend's worker slots; yields (run, row) as runs
    finish. A backend has start(), submit(slot, run) -> handle, wait_any(handles) ->
    (handle, row or exception), restart(slot) and stop()."""

    def __init__(self, backend, retries: int = 2):
        self.backend, self.retries = backend, retries
        self._started = False

    # Use as a context manager around everything one command trains: the workers (and a local
    # Ray instance) start with the first pending run and stop once, at the end.
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._started:
            self.backend.stop()
            self._started = False

    def run(self, pending: list[PlannedRun], store, display):
        queue = collections.deque(pending)
        attempts: collections.Counter = collections.Counter()
        failed: list[tuple[PlannedRun, str]] = []
        inflight: dict = {}  # handle -> (slot, run)
        last_model: dict[int, str] = {}
        if not pending:
            return
        if not self._started:
            self.backend.start()  # knows its worker count from here (Ray: the cluster's size)
            self._started = True
        idle = list(range(self.backend.workers))
        display.workers = self.backend.workers
        try:
            while queue or inflight:
                while idle and queue:
                    busy = {run.run_id for _, run in inflight.values()}
                    run = _take(queue, last_model.get(idle[-1]), busy)
                    if run is None:  # only twins of runs in flight are left: wait for them
                        break
                    if store.done(run.run_id):  # finished by its twin or another experiment
                        display.skipped(run)
                        continue
                    slot = idle.pop()
                    display.run_dispatched(run)
                    inflight[self.backend.submit(slot, run)] = (slot, run)
                if not inflight:
                    continue
                handle, outcome = self.backend.wait_any(list(inflight))
                slot, run = inflight.pop(handle)
                idle.append(slot)
                if isinstance(outcome, WorkerDied):
                    self.backend.restart(slot)
                    last_model.pop(slot, None)
                    attempts[run.run_id] += 1
                    if attempts[run.run_id] <= self.retries:
                        display.retrying(run, str(outcome))
                        queue.appendleft(run)
                    else:
                        failed.append((run, str(outcome)))
                        display.failed(run, str(outcome))
                    continue
                if isinstance(outcome, BaseException):
                    raise outcome  # the run's own error (bad config, ...): as in this process
                last_model[slot] = run.model
                yield run, outcome
        except BaseException:
            self.__exit__()  # interrupted: stop the workers now, not at the command's end
            raise
        if failed:
            names = "; ".join(f"{run.label} seed {run.seed} ({why})" for run, why in failed)
            raise PairzooError(f"{len(failed)} run(s) lost their worker {self.retries + 1} times "
                               f"and were not stored: {names}. Every other run is in the "
                               "store; run the same command again to retry them")


def _take(queue: collections.deque, model: str | None, busy: set) -> PlannedRun | None:
    """The next queued run of `model` (keeps the worker's traced step warm), else the next
    run; never a run whose twin (same id: same model, recipe, seed, data) is in flight."""
    candidates = [(i, run) for i, run in enumerate(queue) if run.run_id not in busy]
    if not candidates:
        return None
    index, run = next(((i, r) for i, r in candidates if r.model == model), candidates[0])
    del queue[index]
    return run
