"""Models are backend-portable: one trains and evaluates under JAX (in a subprocess, since the
backend is fixed at the first `import keras`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import json
from pairzoo.training import train
import keras
r = train("siamese_fullyconv", seed=0, overrides={"train.epochs": 1, "train.n_train": 100,
                                                  "train.n_test": 100})
print(json.dumps({"backend": keras.backend.backend(), **r.metrics}))
"""


@pytest.mark.slow  # imports JAX and traces every layer (~45 s)
def test_trains_and_evaluates_under_jax(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PAIRZOO_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    assert metrics["backend"] == "jax"
    assert 0 <= metrics["test_error"] <= 60
    assert metrics["params"] > 0
