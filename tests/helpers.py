"""Shared test helpers (importable because pytest puts tests/ on sys.path)."""

import os
import subprocess
import sys


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
