"""One display for a whole experiment: runs done / total with the time left, and the current
run's epochs. A rich live display on a terminal; one plain line per finished run otherwise
(logs of background jobs stay readable)."""

from __future__ import annotations

import functools

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from pairzoo.experiments.plan import PlannedRun, TimeModel, format_duration, pool_speedup
from pairzoo.wording import plural


def _epoch_summary(logs: dict) -> str:
    parts = [f"loss {logs['loss']:.3f}"] if logs.get("loss") is not None else []
    for key in ("val_compare_accuracy", "val_accuracy"):
        if logs.get(key) is not None:
            parts.append(f"test acc {100 * logs[key]:.1f}%")
            break
    return "  ".join(parts)


@functools.cache
def _epoch_callback_class():
    """Built on first use so that importing this module does not import Keras."""
    import keras

    class EpochCallback(keras.callbacks.Callback):
        def __init__(self, display: ExperimentProgress):
            super().__init__()
            self.display = display

        def on_epoch_end(self, epoch, logs=None):
            self.display.epoch_done(epoch + 1, logs or {})

    return EpochCallback


class ExperimentProgress:
    """Use as a context manager around the runs of one plan."""

    def __init__(self, title: str, runs: list[PlannedRun], done: int, times: TimeModel,
                 console: Console | None = None, epoch_callbacks: bool = True,
                 workers: int = 1, stack: int = 1):
        self.title, self.times, self.workers, self.stack = title, times, workers, stack
        self.epoch_callbacks = epoch_callbacks  # False: no Keras callback (and no Keras import)
        self.pending = list(runs)  # not started yet, in order
        self.total, self.done = len(runs) + done, done
        self.console = console or Console(stderr=True)
        self._live = self.console.is_terminal
        self._current: PlannedRun | None = None
        self._stack: list[PlannedRun] = []  # runs training together with _current
        self._epochs_done = 0
        self.running: list[PlannedRun] = []  # in worker processes (dispatch.Dispatcher)

    # --- the time left ---------------------------------------------------------------------

    def seconds_left(self) -> float:
        left = self.times.total(self.pending, stack=self.stack)
        current = self._stack or ([self._current] if self._current is not None else [])
        if current:
            epochs = current[0].preset.train.epochs
            left += (self.times.total(current, stack=len(current))
                     * (1 - self._epochs_done / epochs))
        # runs in workers: half done on average; workers share the load
        left += self.times.total(self.running) / 2
        return left / pool_speedup(self.workers)

    def _left(self) -> str:
        return f"about {format_duration(self.seconds_left())} left"

    # --- events ----------------------------------------------------------------------------

    def __enter__(self):
        message = (f"{self.title}: {plural(len(self.pending), 'run')} to do, {self.done} "
                   f"already in the store; {self._left()}")
        if self._live:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), console=self.console, transient=False)
            self._progress.start()
            self._overall = self._progress.add_task(self.title, total=self.total,
                                                    completed=self.done, info=self._left())
            self._run_task = self._progress.add_task("", total=1, visible=False, info="")
        else:
            self.console.print(message, highlight=False)
        return self

    def __exit__(self, *exc):
        if self._live:
            self._progress.stop()

    def run_started(self, run: PlannedRun) -> list:
        """Marks `run` current; returns the Keras callbacks that report its epochs."""
        self.pending.remove(run)
        self._current, self._epochs_done = run, 0
        if self._live:
            self._progress.reset(self._run_task, total=run.preset.train.epochs, visible=True,
                                 description=f"  {run.label} seed {run.seed}"
                                 + (f" fold {run.fold}" if run.fold is not None else ""),
                                 info="")
        return [_epoch_callback_class()(self)] if self.epoch_callbacks else []

    def stack_started(self, runs: list[PlannedRun]) -> list:
        """Marks runs of one preset, trained together, current; returns the Keras callbacks
        that report their (common) epochs."""
        callbacks = self.run_started(runs[0])
        for run in runs[1:]:
            self.pending.remove(run)
        self._stack = list(runs)
        if self._live:
            seeds = ", ".join(str(run.seed) for run in runs)
            self._progress.update(self._run_task, description=f"  {runs[0].label} seeds {seeds} "
                                  f"({len(runs)} together)")
        return callbacks

    def run_dispatched(self, run: PlannedRun) -> None:
        """`run` went to a worker process (no per-epoch reports from there)."""
        self.pending.remove(run)
        self.running.append(run)
        if self._live:
            self._progress.update(self._run_task, visible=True, completed=0, total=1,
                                  description=f"  {len(self.running)} running: "
                                  + ", ".join(sorted({r.model for r in self.running})))

    def retrying(self, run: PlannedRun, why: str) -> None:
        self.running.remove(run)
        self.pending.insert(0, run)
        self.console.print(f"{run.label} seed {run.seed}: {why}; retrying it", highlight=False)

    def failed(self, run: PlannedRun, why: str) -> None:
        self.running.remove(run)
        self.console.print(f"{run.label} seed {run.seed}: {why}; gave up (not stored)",
                           highlight=False)

    def skipped(self, run: PlannedRun) -> None:
        """`run` turned up in the store, finished by a concurrent experiment."""
        self.pending.remove(run)
        self.done += 1
        if self._live:
            self._progress.update(self._overall, completed=self.done, info=self._left())
        else:
            self.console.print(f"[{self.done}/{self.total}] {run.label} seed {run.seed}: "
                               "finished by another process", highlight=False)

    def epoch_done(self, epoch: int, logs: dict) -> None:
        self._epochs_done = epoch
        if self._live:
            self._progress.update(self._run_task, completed=epoch, info=_epoch_summary(logs))
            self._progress.update(self._overall, info=self._left())

    def run_finished(self, run: PlannedRun, row: dict) -> None:
        self.done += 1
        if run in self._stack:
            self._stack.remove(run)
        if not self._stack:
            self._current = None
        if run in self.running:
            self.running.remove(run)
        self.times.add(row)
        failed = row.get("status", "ok") != "ok"
        if failed:  # said on a terminal too: a diverged run must never pass unnoticed
            self.console.print(f"{run.label} seed {run.seed}: {row['status']}: "
                               f"{row.get('error', '')}", highlight=False)
        if self._live:
            self._progress.update(self._overall, completed=self.done, info=self._left())
            return
        where = f" fold {run.fold}" if run.fold is not None else ""
        outcome = row["status"] if failed else f"test error {row['test_error']:g} %"
        self.console.print(
            f"[{self.done}/{self.total}] {run.label} seed {run.seed}{where}: {outcome} in "
            f"{row['seconds']:.0f} s; {self._left()}", highlight=False)
