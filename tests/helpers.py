"""Shared test helpers (importable because pytest puts tests/ on sys.path)."""

import os
import subprocess
import sys

# `gancomp ARGS` in a process where TensorFlow and Keras cannot be imported.
NO_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = sys.modules["keras"] = None  # as if not installed
from gancomp.cli import main
main(prog_name="gancomp")
"""


def run_cli_without_tensorflow(*args, timeout=300) -> subprocess.CompletedProcess:
    """Run ``gancomp ARGS`` as if the ``train`` extra were not installed."""
    return subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(*args, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """Run ``python -m gancomp ARGS`` in a fresh process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gancomp", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
