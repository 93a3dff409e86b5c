"""Training throughput: images/s of the real training steps and of the input pipeline.

    python scripts/bench_train_throughput.py --data DIR [--patch 32] [--batch 32] [--steps 30]

Uses gancomp.training.trainer.Trainer itself (same model, same compiled steps, same tf.data
pipeline), so the figures are the ones `gancomp train` gets. Run it on an idle
machine; results go to docs/PERFORMANCE.md by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--num-down", type=int, default=None)
    ap.add_argument("--channels", type=int, default=96)
    ap.add_argument("--latent-channels", type=int, default=None)
    args = ap.parse_args()

    from gancomp.training.data import make_dataset
    from gancomp.training.trainer import Trainer, TrainSettings

    with tempfile.TemporaryDirectory() as tmp:
        s = TrainSettings(
            category="bench",
            data=args.data,
            output=os.path.join(tmp, "m"),
            steps=args.steps,
            batch_size=args.batch,
            patch_size=args.patch,
            num_down=args.num_down,
            channels=args.channels,
            latent_channels=args.latent_channels,
            progress=False,
        )
        t = Trainer(s)
        print(
            f"# config: stride {t.cfg.stride}, channels {t.cfg.channels}, latent {t.cfg.latent_channels}, "
            f"batch {args.batch}, patch {args.patch}, {os.cpu_count()} CPUs",
            file=sys.stderr,
        )
        # Input pipeline alone.
        it = iter(make_dataset(t.train_set, t.patch, args.batch, 0))
        next(it)
        t0 = time.perf_counter()
        for _ in range(args.steps * 4):
            next(it)
        pipe = args.steps * 4 * args.batch / (time.perf_counter() - t0)
        rows = [("input pipeline", pipe)]
        for name, fn in (("RD step", t._rd_step), ("GAN step (D + G)", t._gan_step)):
            fn(t.dist_ds)  # trace and warm up
            t0 = time.perf_counter()
            for _ in range(args.steps):
                out = fn(t.dist_ds)
            float(out["loss"])
            rows.append((name, args.steps * args.batch / (time.perf_counter() - t0)))
    print(f"| patch {args.patch}, batch {args.batch} | images/s |")
    print("| --- | --- |")
    for name, v in rows:
        print(f"| {name} | {v:.1f} |")


if __name__ == "__main__":
    main()
