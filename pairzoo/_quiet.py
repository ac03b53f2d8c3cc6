"""A quiet, fast TensorFlow start, arranged before TensorFlow is first imported.

- TF_CPP_MIN_LOG_LEVEL=3: no INFO/WARNING lines from TensorFlow's C++ runtime.
- oneDNN kernels stay on (TensorFlow's default on x86): measured here they train our models
  13-15 % faster than TensorFlow's own kernels (benchmarks/results/training.md). Their price is
  two start-up banners ("oneDNN custom operations are on", and absl's "All log messages before
  absl::InitializeLog()") that C++ prints during `import tensorflow`, before any log level
  applies. So that one import runs with file descriptor 2 captured, and everything it wrote
  except those banners is written back to stderr (real errors and warnings still show).

`setdefault` keeps any value the user exported: TF_CPP_MIN_LOG_LEVEL=0 brings every log back
(the banners included), TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN off.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile

BANNERS = ("oneDNN custom operations are on",
           "All log messages before absl::InitializeLog() is called")


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # the banners are INFO lines: filter them whenever INFO is off, as the level asks
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("0", "") or "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _BannerFilter) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BannerFilter())


class _BannerFilter(importlib.abc.MetaPathFinder):
    """Finds nothing itself: on the first `import tensorflow` it removes itself and wraps the
    real loader's exec_module in the stderr filter."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module):
                with stderr_without(BANNERS):
                    run(module)

            spec.loader.exec_module = exec_module  # this spec's loader instance only
        return spec


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
