"""Training throughput: images/s of the real training steps and of the input pipeline.

    python scripts/bench_train_throughput.py --data DIR [--config flower] [--precision mixed_bfloat16]
        [--jit] [--cache] [--threads 2,2] [--entropy-model hyperprior] [--steps 30]
    python scripts/bench_train_throughput.py --data DIR --config flower --compare

Uses gancomp.training.trainer.Trainer itself (same model, same compiled steps, same
input pipeline), so the figures are the ones `gancomp train` gets with the same options.
--config cifar is patch 32, stride 4 (num_down 2), latent 64; --config flower is patch
128, stride 16 (num_down 4), latent 128; explicit --patch, --num-down and so on override
the preset. One configuration per process: the precision decides how TensorFlow is
imported (oneDNN) and the thread pools are fixed by the first operation. --compare runs
the float32 baseline and each speed option alone, each in a fresh process, and prints
one table. Wall figures need an idle machine; the CPU column (seconds of CPU per image,
all threads) is less disturbed by other work. Results go to docs/PERFORMANCE.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PRESETS = {
    "cifar": {"patch": 32, "num_down": 2, "latent_channels": 64, "batch": 32},
    "flower": {"patch": 128, "num_down": 4, "latent_channels": 128, "batch": 8},
}
#: --compare: the baseline, then each option alone, then all of them.
VARIANTS = [
    ("float32", []),
    ("mixed_bfloat16", ["--precision", "mixed_bfloat16"]),
    ("float32 + oneDNN", ["--onednn"]),
    ("jit", ["--jit"]),
    ("cache", ["--cache"]),
    ("threads 1,2", ["--threads", "1,2"]),
    ("mixed_bfloat16 + cache", ["--precision", "mixed_bfloat16", "--cache"]),
]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="image folder or CIFAR-10 batches folder")
    ap.add_argument("--cifar-class", default="airplane")
    ap.add_argument("--config", choices=sorted(PRESETS), default="cifar")
    ap.add_argument("--patch", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int, default=30, help="timed steps of each kind")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps after tracing")
    ap.add_argument("--num-down", type=int)
    ap.add_argument("--channels", type=int, default=96)
    ap.add_argument("--latent-channels", type=int)
    ap.add_argument("--entropy-model", choices=["factorized", "hyperprior"], default="factorized")
    ap.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32")
    ap.add_argument("--jit", action="store_true", help="XLA-compiled steps")
    ap.add_argument("--cache", action="store_true", help="through the patch cache")
    ap.add_argument("--cache-dir", help="patch cache folder to keep (default: a temporary one)")
    ap.add_argument("--threads", help="INTRA,INTER: TensorFlow's thread pools")
    ap.add_argument(
        "--onednn", action="store_true", help="oneDNN kernels in float32 too (mixed always has)"
    )
    ap.add_argument("--no-gan", action="store_true", help="time the RD step only")
    ap.add_argument("--compare", action="store_true", help="run VARIANTS, one process each")
    ap.add_argument("--json", action="store_true", help="print one JSON line (used by --compare)")
    return ap


def _settings(args, tmp: str):
    from gancomp.training.trainer import TrainSettings

    preset = PRESETS[args.config]
    intra = inter = None
    if args.threads:
        intra, inter = (int(v) for v in args.threads.split(","))
    cache_dir = args.cache_dir or (os.path.join(tmp, "cache") if args.cache else None)
    return TrainSettings(
        category="bench",
        data=args.data,
        cifar_class=args.cifar_class,
        output=os.path.join(tmp, "m"),
        steps=10**6,
        batch_size=args.batch or preset["batch"],
        patch_size=args.patch or preset["patch"],
        num_down=args.num_down or preset["num_down"],
        channels=args.channels,
        latent_channels=args.latent_channels or preset["latent_channels"],
        entropy_model=args.entropy_model,
        precision=args.precision,
        jit=args.jit,
        cache_dir=cache_dir,
        intra_op_threads=intra,
        inter_op_threads=inter,
        progress=False,
    )


def _time_step(fn, it, steps: int, warmup: int, batch: int) -> tuple[float, float, float]:
    """(images/s wall, CPU seconds per image, loss of the last step)."""
    for _ in range(1 + warmup):  # the first call traces
        out = fn(it)
    float(out["loss"])
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        out = fn(it)
    loss = float(out["loss"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return steps * batch / wall, cpu / (steps * batch), loss


def measure(args) -> dict:
    if args.onednn or args.precision == "mixed_bfloat16":
        from gancomp.training._tf import tf

        tf(onednn=True)
    from gancomp.training._tf import onednn_enabled
    from gancomp.training.data import make_dataset
    from gancomp.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        s = _settings(args, tmp)
        if s.cache_dir:
            from gancomp.training.data import load_cached

            load_cached(s.data, s.cifar_class, s.cache_dir)  # built outside the timing
        t0 = time.perf_counter()
        t = Trainer(s)
        setup = time.perf_counter() - t0
        tf_ = __import__("tensorflow")
        row = {
            "config": (
                f"{args.config}: patch {t.patch}, batch {s.batch_size}, stride {t.cfg.stride}, "
                f"{t.cfg.channels}/{t.cfg.latent_channels} channels, {t.cfg.entropy_model}"
            ),
            "precision": s.precision,
            "onednn": onednn_enabled(),
            "jit": s.jit,
            "cache": bool(s.cache_dir),
            "threads": [
                tf_.config.threading.get_intra_op_parallelism_threads(),
                tf_.config.threading.get_inter_op_parallelism_threads(),
            ],
            "setup_s": round(setup, 2),
            "cpus": os.cpu_count(),
        }
        it = iter(make_dataset(t.train_set, t.patch, s.batch_size, 0))
        next(it)
        n = args.steps * 4
        t0 = time.perf_counter()
        for _ in range(n):
            next(it)
        row["input_img_s"] = n * s.batch_size / (time.perf_counter() - t0)
        steps = [("rd", t._rd_step)] + ([] if args.no_gan else [("gan", t._gan_step)])
        for name, fn in steps:
            rate, cpu, loss = _time_step(fn, t.dist_ds, args.steps, args.warmup, s.batch_size)
            row[f"{name}_img_s"], row[f"{name}_cpu_s_per_img"], row[f"{name}_loss"] = (
                rate,
                cpu,
                loss,
            )
    return row


def _print_table(rows: list[tuple[str, dict]]) -> None:
    print(f"# {rows[0][1]['config']}, {rows[0][1]['cpus']} CPUs")
    print(
        "| variant | threads | input img/s | RD step img/s | RD CPU ms/img "
        "| GAN step img/s | GAN CPU ms/img | setup s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows:
        if "error" in r:
            print(f"| {name} | failed: {r['error']} | | | | | | |")
            continue
        gan = (
            f"{r['gan_img_s']:.1f} | {1000 * r['gan_cpu_s_per_img']:.1f}"
            if "gan_img_s" in r
            else "- | -"
        )
        threads = ",".join(str(v or "default") for v in r["threads"])
        print(
            f"| {name} | {threads} | {r['input_img_s']:.0f} | {r['rd_img_s']:.1f} "
            f"| {1000 * r['rd_cpu_s_per_img']:.1f} | {gan} | {r['setup_s']:.1f} |"
        )


def _compare(argv: list[str]) -> None:
    base = [a for a in argv if a != "--compare"]
    rows = []
    for name, extra in VARIANTS:
        cmd = [sys.executable, os.path.abspath(__file__), *base, *extra, "--json"]
        print(f"# {name}: {' '.join(extra) or '(baseline)'}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append((name, {"error": tail}))
        else:
            rows.append((name, json.loads(lines[-1])))
    if all("error" in r for _, r in rows):
        raise SystemExit("every variant failed")
    rows.sort(key=lambda nr: "error" in nr[1])
    _print_table(rows)


def main() -> None:
    args = _parser().parse_args()
    if args.compare:
        _compare(sys.argv[1:])
        return
    row = measure(args)
    if args.json:
        print(json.dumps(row))
        return
    flags = [args.precision, "oneDNN" if row["onednn"] else "no oneDNN"]
    flags += [f for f, on in (("jit", args.jit), ("cache", args.cache)) if on]
    _print_table([(", ".join(flags), row)])


if __name__ == "__main__":
    main()
