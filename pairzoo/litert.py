"""Running .tflite files on ai-edge-litert, quietly.

LiteRT's C++ runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to
stderr on a model's first invocation, whatever the log level: that one call runs with that
line filtered out (pairzoo._startup.stderr_without); later calls run as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pairzoo.interface import INPUT_NAME, SIGNATURE_KEY

RUNTIME_CHATTER = ("Created TensorFlow Lite XNNPACK delegate",)


def signature_runner(model_path: str | None = None, model_content: bytes | None = None
                     ) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """pairs (N, 2, 14, 14) -> {output name: array} through the `serving_default` signature.
    Raises ImportError without ai-edge-litert, ValueError/RuntimeError for a bad file."""
    from ai_edge_litert.interpreter import Interpreter

    from pairzoo._startup import stderr_without

    signature = Interpreter(model_path=model_path, model_content=model_content
                            ).get_signature_runner(SIGNATURE_KEY)
    first = [True]

    def run(pairs: np.ndarray) -> dict[str, np.ndarray]:
        inputs = {INPUT_NAME: np.ascontiguousarray(pairs, dtype=np.float32)}
        if first[0]:
            with stderr_without(RUNTIME_CHATTER):
                outputs = signature(**inputs)
            first[0] = False
            return outputs
        return signature(**inputs)

    return run
