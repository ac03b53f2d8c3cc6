"""Silence TensorFlow's start-up chatter unless the user asked for it.

Both variables are read once, when TensorFlow's C++ runtime loads, so this must run before the
first `import tensorflow` (or `import keras`, which imports it). `setdefault` keeps any value the
user exported themselves, which is how they ask for the logs back.
"""

import os


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no INFO/WARNING lines from C++
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # no "oneDNN custom operations" banner
