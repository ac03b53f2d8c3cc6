"""What pairzoo arranges, at `import pairzoo`, for when TensorFlow and Keras start later.

`import pairzoo` imports neither (so `pairzoo --help` and `pairzoo list` stay fast). It leaves
two import hooks instead, each acting once, when its module is first imported by anyone:

- tensorflow: fix the thread pools and start quietly.
  - Threads: one intra-op thread, two inter-op threads (the two towers of a siamese model run
    side by side), through TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, which TensorFlow
    reads when it starts. They must be fixed before any op runs and never depend on which
    model started TensorFlow: the intra-op count changes the order of a convolution's sums and
    with it a run's result (measured: siamese_fullyconv, seed 0, 3 epochs: 11.5 % test error
    with one intra-op thread, 10.3 % with two, TensorFlow's default here). So a seed fixes a
    run whatever the process did before. PAIRZOO_TF_THREADS="intra,inter" or TensorFlow's own
    variables override it (worker processes sharing two cores use "1,1").
  - Quiet: TF_CPP_MIN_LOG_LEVEL=3, no INFO/WARNING lines from TensorFlow's C++ runtime; and
    the start-up banners that C++ prints during `import tensorflow`, before any log level
    applies (oneDNN's "custom operations are on", absl's "All log messages before
    absl::InitializeLog()"), are filtered: that one import runs with file descriptor 2
    captured, and everything it wrote except those banners is written back to stderr.
    TF_CPP_MIN_LOG_LEVEL=0 brings every log back, the banners included.
- keras: register pairzoo's model and layer classes, so `keras.saving.load_model` finds them
  in a process that imported pairzoo, whichever of the two came first.

`setdefault` keeps any value the user exported.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile

BANNERS = ("oneDNN custom operations are on",
           "All log messages before absl::InitializeLog() is called")
DEFAULT_THREADS = ("1", "2")  # intra-op, inter-op


def prepare() -> None:
    """Arrange the TensorFlow start and the Keras registration (idempotent, imports neither)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        _hook("tensorflow", around=_tensorflow_start)
    if "keras" in sys.modules:
        register_keras_classes()
    else:
        _hook("keras", after=register_keras_classes)


def register_keras_classes() -> None:
    # a module already halfway through its import is returned as is: it registers its own
    # classes as it finishes
    for module in ("pairzoo.layers", "pairzoo.models"):
        importlib.import_module(module)


def tensorflow_threads() -> tuple[str, str]:
    """(intra-op, inter-op) thread counts for this process: PAIRZOO_TF_THREADS, else ours."""
    chosen = os.environ.get("PAIRZOO_TF_THREADS")
    return tuple(chosen.split(",")) if chosen else DEFAULT_THREADS


@contextlib.contextmanager
def _tensorflow_start():
    intra, inter = tensorflow_threads()
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", intra)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", inter)
    # the banners are INFO lines: filter them whenever INFO is off, as the level asks
    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL") not in ("0", "")
    with stderr_without(BANNERS) if quiet else contextlib.nullcontext():
        yield


class _ImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: on the first import of `name` it removes itself and wraps the
    real loader's exec_module (this spec's loader instance only)."""

    def __init__(self, name: str, around=None, after=None):
        self.name, self.around, self.after = name, around, after

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            run, around, after = spec.loader.exec_module, self.around, self.after

            def exec_module(module):
                with around() if around else contextlib.nullcontext():
                    run(module)
                if after:
                    after()

            spec.loader.exec_module = exec_module
        return spec


def _hook(name: str, around=None, after=None) -> None:
    if not any(isinstance(f, _ImportHook) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _ImportHook(name, around, after))


@contextlib.contextmanager
def stderr_without(phrases: tuple[str, ...]):
    """Capture file descriptor 2 (C++ and Python writes alike) into a temporary file, then write
    back every line that contains none of `phrases`. A file, not a pipe: a pipe could fill up
    and block the import."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            kept = [line for line in text.splitlines(keepends=True)
                    if not any(phrase in line for phrase in phrases)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
