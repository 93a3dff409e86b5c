#!/usr/bin/env python
"""Speed of gancomp end to end and in-process, next to Pillow's WebP and AVIF.

Measures, and prints as markdown tables:

a. 1,000 CIFAR-size images compressed in one ``gancomp compress`` call and decompressed in one
   ``gancomp decompress`` call (images/s with and without process start), plus process start
   and model load alone (the same commands on one image);
b. one 768x512 photo compressed and decompressed end to end;
c. ``gancomp --help`` and ``gancomp compare`` end to end;
d. the share of in-process compress (decompress) time spent in range coding;
e. Pillow WebP and AVIF encode/decode speed on the same images, side by side.

Usage (from a checkout)::

    python scripts/bench_speed.py                      # shipped models
    python scripts/bench_speed.py --random-model       # before any model is trained
    python scripts/bench_speed.py --data cifar_pngs/ --photo photo.jpg

Timings are wall clock on whatever else the machine is doing: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from _bench_common import (
    TEST_DATA,
    Run,
    add_model_options,
    best_time,
    gancomp_cmd,
    markdown_table,
    prepare_models,
    run_timed,
)
from gancomp.evaluation.metrics import psnr
from gancomp.io.images import IMAGE_SUFFIXES


def cifar_images(folder: Path, count: int, data: Path | None) -> list[Path]:
    """``count`` 32x32 PNGs in ``folder``: from --data, else perturbed copies of the test images."""
    folder.mkdir(parents=True)
    if data:
        found = sorted(p for p in data.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
        if not found:
            sys.exit(f"no images in {data}")
        for i, p in enumerate(found):
            shutil.copy(p, folder / f"img_{i:04d}{p.suffix.lower()}")
        return sorted(folder.iterdir())
    rng = np.random.default_rng(0)
    bases = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(TEST_DATA.glob("*_?.png"))]
    for i in range(count):
        im = bases[i % len(bases)]
        if rng.random() < 0.5:
            im = im[:, ::-1]
        im = np.roll(im, tuple(rng.integers(-3, 4, 2)), axis=(0, 1)).astype(np.float64)
        im = im * rng.uniform(0.8, 1.2) + rng.normal(0, 3, im.shape)
        Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(folder / f"img_{i:04d}.png")
    return sorted(folder.iterdir())


def photo_768x512(out: Path, photo: Path | None) -> Path:
    """A 768x512 photo: --photo resized/cropped, else tests/data/flower_0.jpg upscaled."""
    src = Image.open(photo or TEST_DATA / "flower_0.jpg").convert("RGB")
    scale = max(768 / src.width, 512 / src.height)
    src = src.resize((round(src.width * scale), round(src.height * scale)), Image.LANCZOS)
    left, top = (src.width - 768) // 2, (src.height - 512) // 2
    src.crop((left, top, left + 768, top + 512)).save(out)
    return out


def timed_method(cls: type, name: str) -> Callable[[], float]:
    """Accumulate the time spent in ``cls.name``; returns a function that stops and reports it."""
    original = getattr(cls, name)
    spent = [0.0]

    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    setattr(cls, name, wrapper)

    def stop() -> float:
        setattr(cls, name, original)
        return spent[0]

    return stop


@dataclass
class Timing:
    encode: float  # seconds for all images
    decode: float
    size: int  # total compressed bytes
    psnr: float  # mean over the images
    encode_coding: float = 0.0  # of which range coding
    decode_coding: float = 0.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def gancomp_in_process(
    models: Path, category: str, images: Sequence[np.ndarray], quality: int
) -> Timing:
    """gancomp's batched API on the images (compress, then decode), after a warm-up call."""
    from gancomp.coding.entropy import IndexedCoder
    from gancomp.evaluation.roundtrip import round_trip
    from gancomp.runtime import codec as codec_mod

    c = codec_mod.Codec.load(category, models)
    round_trip(c, images[:1], quality)  # builds the network
    # Every stream (factorized y, hyperprior z and y) goes through these two methods.
    stop_encode = timed_method(IndexedCoder, "encode_grouped")
    stop_decode = timed_method(IndexedCoder, "decode_grouped")
    rt = round_trip(c, images, quality)
    enc_coding, dec_coding = stop_encode(), stop_decode()
    quality_db = float(np.mean([psnr(a, d) for a, d in zip(images, rt.decoded)]))
    return Timing(
        rt.encode_seconds,
        rt.decode_seconds,
        sum(rt.sizes),
        quality_db,
        enc_coding,
        dec_coding,
    )


def pillow_codec(fmt: str, images: Sequence[np.ndarray], **options) -> Timing:
    """Pillow's ``fmt`` (WEBP, AVIF) on the images, one at a time."""
    pil = [Image.fromarray(a) for a in images]
    t0 = time.perf_counter()
    blobs = []
    for im in pil:
        buf = io.BytesIO()
        im.save(buf, format=fmt, **options)
        blobs.append(buf.getvalue())
    enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    decoded = []
    for b in blobs:
        with Image.open(io.BytesIO(b)) as im:
            decoded.append(np.asarray(im.convert("RGB")))
    dec = time.perf_counter() - t0
    quality_db = float(np.mean([psnr(a, d) for a, d in zip(images, decoded)]))
    return Timing(enc, dec, sum(map(len, blobs)), quality_db)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    parser.add_argument("--data", type=Path, help="folder of CIFAR-size images (default: made up)")
    parser.add_argument("--count", type=int, default=1000, help="CIFAR-size images (1000)")
    parser.add_argument("--photo", type=Path, help="photo to resize to 768x512")
    parser.add_argument("--category", default="airplane", help="model for the CIFAR images")
    parser.add_argument("--photo-category", default="flower", help="model for the photo")
    parser.add_argument("--quality", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each short command")
    parser.add_argument("--webp-quality", type=int, default=75)
    parser.add_argument("--avif-quality", type=int, default=60)
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    args = parser.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="gancomp-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(args, work)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    models = prepare_models(
        args.models_dir, [args.category, args.photo_category], args.random_model, work
    )
    files = cifar_images(work / "cifar", args.count, args.data)
    n = len(files)
    photo = photo_768x512(work / "photo.png", args.photo)
    m = ["--models-dir", models]
    q = ["-q", args.quality]

    # a. process start + model load, then 1,000 images in one call each way.
    log("timing process start...")
    one = files[0]
    start_c = best_time(
        gancomp_cmd(
            "compress", one, "-c", args.category, *q, "-o", work / "one.gcz", "--force", *m
        ),
        args.repeat,
    )
    start_d = best_time(
        gancomp_cmd("decompress", work / "one.gcz", "-o", work / "one.png", "--force", *m),
        args.repeat,
    )
    log(f"compressing and decompressing {n} images...")
    batch_c = run_timed(
        gancomp_cmd("compress", work / "cifar", "-c", args.category, *q, "-o", work / "gcz", *m)
    )
    batch_d = run_timed(gancomp_cmd("decompress", work / "gcz", "-o", work / "decoded", *m))

    # b. one 768x512 photo end to end.
    log("photo...")
    photo_gcz, photo_out = work / "photo.gcz", work / "photo.decoded.png"
    photo_c = best_time(
        gancomp_cmd(
            "compress", photo, "-c", args.photo_category, *q, "-o", photo_gcz, "--force", *m
        ),
        args.repeat,
    )
    photo_d = best_time(
        gancomp_cmd("decompress", photo_gcz, "-o", photo_out, "--force", *m), args.repeat
    )

    # c. commands that never load TensorFlow.
    help_t = best_time(gancomp_cmd("--help"), args.repeat)
    compare_t = best_time(gancomp_cmd("compare", photo, photo_out), args.repeat)

    # d, e. in process: range-coding share, and Pillow's codecs on the same pixels.
    log("in-process timings...")
    cifar = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    photo_px = [np.asarray(Image.open(photo).convert("RGB"))]
    g_cifar = gancomp_in_process(models, args.category, cifar, args.quality)
    g_photo = gancomp_in_process(models, args.photo_category, photo_px, args.quality)
    webp = {"quality": args.webp_quality}
    avif = {"quality": args.avif_quality}
    w_cifar, w_photo = pillow_codec("WEBP", cifar, **webp), pillow_codec("WEBP", photo_px, **webp)
    a_cifar, a_photo = pillow_codec("AVIF", cifar, **avif), pillow_codec("AVIF", photo_px, **avif)

    cifar_px = sum(a.shape[0] * a.shape[1] for a in cifar)
    photo_pixels = 768 * 512

    def rate(count: int, total: float, start: float) -> str:
        # Subtracting the one-image run is meaningless when it is within the noise of the batch.
        work_time = total - start
        return f"{(count - 1) / work_time:.0f}" if work_time > 0.05 * total else "n/a (noise)"

    def row(label: str, run: Run) -> tuple[str, str, str]:
        return (label, f"{run.wall:.2f} s", f"{run.cpu:.2f} s")

    kind = ", random" if args.random_model else ""
    print(f"## gancomp end to end (models: {models}{kind}; best of {args.repeat} for short runs)\n")
    rows = [
        row("process start + model load + 1 image, compress", start_c),
        row("process start + model load + 1 image, decompress", start_d),
        row(f"compress {n} CIFAR images, one call", batch_c),
        ("  images/s including process start", f"{n / batch_c.wall:.0f}", f"{n / batch_c.cpu:.0f}"),
        (
            "  images/s excluding process start",
            rate(n, batch_c.wall, start_c.wall),
            rate(n, batch_c.cpu, start_c.cpu),
        ),
        row(f"decompress {n} CIFAR images, one call", batch_d),
        ("  images/s including process start", f"{n / batch_d.wall:.0f}", f"{n / batch_d.cpu:.0f}"),
        (
            "  images/s excluding process start",
            rate(n, batch_d.wall, start_d.wall),
            rate(n, batch_d.cpu, start_d.cpu),
        ),
        row("compress one 768x512 photo", photo_c),
        row("decompress one 768x512 photo", photo_d),
        row("`gancomp --help`", help_t),
        row("`gancomp compare` (768x512)", compare_t),
    ]
    print(markdown_table(["measurement", "wall", "CPU (user+sys)"], rows))

    print("\n## Share of in-process time spent in range coding\n")
    rows = [
        (
            label,
            f"{t.encode:.3f} s",
            f"{t.encode_coding / t.encode:.0%}",
            f"{t.decode:.3f} s",
            f"{t.decode_coding / t.decode:.0%}",
        )
        for label, t in ((f"{n} CIFAR images", g_cifar), ("768x512 photo", g_photo))
    ]
    headers = ["images", "compress", "range coding", "decompress", "range decoding"]
    print(markdown_table(headers, rows))

    print("\n## In-process codec speed, side by side\n")
    rows = []
    for name, c, p in (
        (f"gancomp q{args.quality}", g_cifar, g_photo),
        (f"WebP q{args.webp_quality}", w_cifar, w_photo),
        (f"AVIF q{args.avif_quality}", a_cifar, a_photo),
    ):
        rows.append(
            (
                name,
                f"{n / c.encode:.0f}",
                f"{n / c.decode:.0f}",
                f"{8 * c.size / cifar_px:.2f}",
                f"{c.psnr:.2f}",
                f"{1000 * p.encode:.0f}",
                f"{1000 * p.decode:.0f}",
                f"{8 * p.size / photo_pixels:.3f}",
                f"{p.psnr:.2f}",
            )
        )
    headers = [
        "codec",
        "CIFAR enc img/s",
        "CIFAR dec img/s",
        "CIFAR bpp",
        "CIFAR PSNR",
        "photo enc ms",
        "photo dec ms",
        "photo bpp",
        "photo PSNR",
    ]
    print(markdown_table(headers, rows))
    if args.random_model:
        print("\n(random models: speed is representative, bpp and PSNR are not)")


if __name__ == "__main__":
    main()
