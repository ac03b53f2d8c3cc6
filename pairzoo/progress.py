"""Progress displays: a rich live bar for `fit`, plain lines when output is not a terminal."""

from __future__ import annotations

import keras
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pairzoo.wording import plural


def _summary(logs: dict) -> str:
    """'loss 0.412  acc 91.2%  test acc 88.0%' from a fit epoch's logs."""
    parts = [f"loss {logs['loss']:.3f}"] if "loss" in logs else []
    for key, label in (("compare_accuracy", "acc"), ("val_compare_accuracy", "test acc")):
        if key in logs:
            parts.append(f"{label} {100 * logs[key]:.1f}%")
    return "  ".join(parts)


class EpochProgress(keras.callbacks.Callback):
    """One line per epoch with live loss and comparison accuracy (train and test)."""

    def __init__(self, title: str, epochs: int, console: Console | None = None):
        super().__init__()
        self.title, self.epochs = title, epochs
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None

    def on_train_begin(self, logs=None):
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[summary]}"), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.title, total=self.epochs, summary="")
        else:
            self.console.print(f"training {self.title}: {plural(self.epochs, 'epoch')}",
                               highlight=False)

    def on_epoch_end(self, epoch, logs=None):
        summary = _summary(logs or {})
        if self._progress is not None:
            self._progress.update(self._task, advance=1, summary=summary)
        else:
            self.console.print(f"epoch {epoch + 1}/{self.epochs}  {summary}", highlight=False)

    def on_train_end(self, logs=None):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @classmethod
    def alongside(cls, callbacks, title: str, epochs: int) -> list:
        """A display for another run shown where `callbacks` show theirs (a distilled run's
        teachers, trained before it): one if `callbacks` hold an EpochProgress, else none."""
        shown = [cb for cb in callbacks or [] if isinstance(cb, cls)]
        return [cls(title, epochs, shown[0].console)] if shown else []
