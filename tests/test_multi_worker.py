"""`gancomp train --strategy multi-worker`: two worker processes on this machine form a
``MultiWorkerMirroredStrategy`` cluster over ``TF_CONFIG`` (loopback, free ports).

The chief (worker 0) writes the model folder and its checkpoints; the other worker computes
its share of every step but writes nothing (our checkpoints are plain ``.npz`` files, so no
worker but the chief has to take part in saving them).
"""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gancomp.runtime.codec import read_header
from helpers import run_cli

# Seconds for the two workers together (about 80 s here, 160 s beside a training run that
# keeps both cores busy): a cluster that hangs fails the test instead of hanging it.
TIMEOUT = 600
TINY = [
    "--channels", "8", "--latent-channels", "8", "--num-down", "3",
    "--patch-size", "32", "--batch-size", "4",
]  # fmt: skip


def _free_ports(n: int) -> list[int]:
    """Ports the OS hands out as free (all held at once, so they differ)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _run_workers(workdirs: list[Path], args: list, logs: Path) -> list[str]:
    """Run ``gancomp train ARGS --strategy multi-worker`` as worker i of a loopback cluster
    in workdirs[i], all at once; fail unless every one exits 0 in time. Returns their stdout."""
    cluster = [f"127.0.0.1:{port}" for port in _free_ports(len(workdirs))]
    logs.mkdir(exist_ok=True)
    procs = []
    with contextlib.ExitStack() as stack:
        try:
            for index, cwd in enumerate(workdirs):
                task = {"type": "worker", "index": index}
                tf_config = {"cluster": {"worker": cluster}, "task": task}
                # Files, not pipes: a worker blocked on a full pipe would stall the cluster.
                out = stack.enter_context(open(logs / f"worker{index}.out", "w"))
                err = stack.enter_context(open(logs / f"worker{index}.err", "w"))
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "gancomp", "train", *map(str, args)]
                        + ["--strategy", "multi-worker"],
                        cwd=cwd,
                        env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
                        stdout=out,
                        stderr=err,
                    )
                )
            deadline = time.monotonic() + TIMEOUT
            for proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    report = "\n".join(
        f"worker {i} (exit {proc.returncode}):\n{(logs / f'worker{i}.err').read_text()[-3000:]}"
        for i, proc in enumerate(procs)
    )
    assert all(proc.returncode == 0 for proc in procs), (
        f"the workers did not all exit 0 within {TIMEOUT} s\n{report}"
    )
    return [(logs / f"worker{i}.out").read_text() for i in range(len(procs))]


@pytest.mark.train
@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_writes(tmp_path, data_dir):
    data = tmp_path / "data"
    data.mkdir()
    for f in sorted(data_dir.glob("airplane_*.png")):
        shutil.copy(f, data / f.name)
    workdirs = [tmp_path / f"worker{i}" for i in range(2)]
    for cwd in workdirs:
        cwd.mkdir()
    args = ["-c", "ship", "--data", data, "--output", "trained/ship", *TINY, "--log-dir", "tb"]
    args += ["--steps", "4", "--rd-steps", "2", "--checkpoint-every", "2"]
    outputs = _run_workers(workdirs, args, tmp_path / "logs")

    chief, other = workdirs
    model = chief / "trained" / "ship"
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["training"]["strategy"] == "multi-worker" and meta["training"]["steps"] == 4
    assert int(np.load(chief / "trained" / "ship.ckpt" / "checkpoint.npz")["step"]) == 4
    assert list((chief / "tb").iterdir()), "the chief writes the TensorBoard events"
    # Both workers end with the same weights: one model trained on both, not two.
    fingerprints = [re.findall(r"fingerprint ([0-9a-f]{8})", out) for out in outputs]
    assert fingerprints == [[meta["fingerprint"]]] * 2, outputs
    assert "model written to trained/ship " in outputs[0]
    assert "model written to the chief worker's --output " in outputs[1]
    # Worker 1 took part in every step but left no file behind, in its folder or elsewhere.
    assert _files_under(other) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "logs", "worker0", "worker1"]

    # The chief's model compresses (the file names it) and decompresses.
    image = data / "airplane_0.png"
    (tmp_path / "out").mkdir()
    packed = tmp_path / "out" / "airplane_0.gcz"
    models_dir = chief / "trained"
    r = run_cli("compress", image, "-c", "ship", "--models-dir", models_dir, "-o", packed)
    assert r.returncode == 0, r.stderr
    assert read_header(packed.read_bytes())[0].fingerprint.hex() == meta["fingerprint"]
    restored = tmp_path / "out" / "airplane_0.png"
    r = run_cli("decompress", packed, "--models-dir", models_dir, "-o", restored)
    assert r.returncode == 0, r.stderr
    with Image.open(image) as a, Image.open(restored) as b:
        assert a.size == b.size
