"""Pilot of issue 11: a factorized and a hyperprior flower model of the same transforms,
trained from scratch for the same wall-clock time, each on one core, side by side.

    taskset -c 0 python scripts/pilot_hyperprior.py factorized --data ../shared/data \\
        --out runs/pilot --minutes 75 &
    taskset -c 1 python scripts/pilot_hyperprior.py hyperprior --data ../shared/data \\
        --out runs/pilot --minutes 75 &

Each run checkpoints every 250 steps to runs/pilot/<kind>.ckpt and stops itself
(SIGTERM to its own process, a clean checkpoint) after --minutes. Running the same
command again resumes it; ``--export`` writes the model folder runs/pilot/<kind> from
the checkpoint as it stands. Evaluation: ``gancomp bench`` on the exported models.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

FLOWER_LAMBDAS = (0.0015, 0.003, 0.0061, 0.0122, 0.0246, 0.0496, 0.0998, 0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["factorized", "hyperprior"])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="runs/pilot")
    ap.add_argument("--minutes", type=float, default=75.0)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument(
        "--export", action="store_true", help="export the checkpoint as it stands (no training)"
    )
    a = ap.parse_args()

    from gancomp.training._tf import tf as import_tf

    tf = import_tf()
    # One core each: one thread for ops, one for scheduling.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from gancomp.training.trainer import TrainSettings, train

    out = os.path.join(a.out, a.kind)
    if a.export:
        import numpy as np

        with np.load(out + ".ckpt/checkpoint.npz") as z:
            a.steps = int(z["step"])
    settings = TrainSettings(
        category="flower",
        data=os.path.join(a.data, "flowers", "train"),
        val_data=os.path.join(a.data, "flowers", "val"),
        output=out,
        steps=a.steps,
        rd_steps=100_000,  # rate-distortion only: the pilot compares entropy models
        batch_size=8,
        patch_size=128,
        lambdas=FLOWER_LAMBDAS,
        checkpoint_every=250,
        val_limit=40,
        resume=os.path.exists(out + ".ckpt/checkpoint.npz"),
        progress=False,
        extra={"config": {"entropy_model": a.kind, "num_down": 4}},
    )
    timer = threading.Timer(a.minutes * 60, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    try:
        print(train(settings))
    except Exception as exc:  # the timed stop arrives as an interruption
        print(f"{a.kind}: {exc}")


if __name__ == "__main__":
    main()
