"""Lazy, quiet TensorFlow import (training and the tests that compare against Keras).

Compress and decompress never import TensorFlow (see :mod:`gancomp.runtime.transforms`).
Environment knobs are set before the import: TF reads them once. oneDNN is
switched off because its kernels change float results with the thread count,
which would make training runs harder to reproduce.
"""

from __future__ import annotations

import contextlib
import os
import sys

_TF = None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C++ start-up chatter (CUDA probes, absl) written straight to fd 2."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def tf():
    """Import and configure TensorFlow once; returns the module."""
    global _TF
    if _TF is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        with _quiet_stderr():
            import tensorflow

            tensorflow.get_logger().setLevel("ERROR")
            import keras  # noqa: F401  (pays Keras' import cost inside the quiet block)
        _TF = tensorflow
    return _TF
