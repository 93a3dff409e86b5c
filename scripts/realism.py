#!/usr/bin/env python
"""Realism of gancomp's reconstructions against WebP and AVIF at the same bytes.

Every image of FOLDER is coded with the CATEGORY model at each --levels level (the real
bitstream, as ``gancomp bench`` codes it) and decoded at each --realism weight r, when the
decoder takes one (``gancomp.decompress(..., realism=r)``; otherwise only r = 0 is measured
and the output says so). Each --codecs codec then codes every image at the Pillow quality
(bench's save options) whose file size is closest to that image's .gcz file, so both have
about the same mean bytes per image.

Per row: mean bpp (whole file), mean PSNR, the accuracy of a classifier two-sample test
(a fresh critic told originals from reconstructions; 0.5 = indistinguishable;
:func:`gancomp.evaluation.realism.two_sample_accuracy`) with its standard error, and the
high-frequency energy ratio (reconstruction over original, spectral power above half the
Nyquist frequency; :func:`gancomp.evaluation.realism.high_frequency_ratio`). Images larger
than 64 pixels on a side are scored on random crops (--crop). The critic needs TensorFlow.

Usage::

    python scripts/realism.py ../shared/data/cifar10/airplane/val --category airplane \\
        --levels 1,2 --realism 0,0.5,1 --markdown --json realism_airplane.json
"""

from __future__ import annotations

import argparse
import inspect
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from _bench_common import add_models_dir_option, markdown_table
from sample_grid import match_size, pillow_encode

#: Images with a side above this are measured on crops of this size.
DEFAULT_CROP = 64


def parse_realism(text: str) -> list[float]:
    """Realism weights from "0,0.5,1": each in [0, 1], order kept, duplicates dropped."""
    weights: list[float] = []
    for part in text.replace(" ", "").split(","):
        try:
            r = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad realism weight {part!r}") from None
        if not 0.0 <= r <= 1.0:
            raise argparse.ArgumentTypeError(f"realism weight {r} is outside [0, 1]")
        if r not in weights:
            weights.append(r)
    return weights


def realism_decoder(
    codec: Any, models_dir: Path | None
) -> Callable[[Sequence[bytes], float], list[np.ndarray]] | None:
    """A function decoding .gcz files at a realism weight, or None if the API has none.

    Prefers the model's batched decoder when it takes ``realism``; else the public
    ``gancomp.decompress``, one file at a time.
    """
    import gancomp
    from gancomp.coding.container import unpack

    if "realism" in inspect.signature(codec.decode_payloads).parameters:

        def batched(blobs: Sequence[bytes], r: float) -> list[np.ndarray]:
            items = [unpack(b) for b in blobs]
            return [d.rgb for d in codec.decode_payloads(items, realism=r)]

        return batched
    if "realism" in inspect.signature(gancomp.decompress).parameters:

        def one_by_one(blobs: Sequence[bytes], r: float) -> list[np.ndarray]:
            return [
                np.asarray(gancomp.decompress(b, models_dir=models_dir, realism=r))[..., :3]
                for b in blobs
            ]

        return one_by_one
    return None


def closest_size(name: str, a: np.ndarray, target: int) -> tuple[bytes, np.ndarray, int]:
    """``name``'s file of ``a`` (bench's save options) whose size is closest to ``target``
    bytes, its decoded pixels and its quality."""
    from gancomp.evaluation.bench import CODECS

    spec = CODECS[name]
    encode = pillow_encode(spec["format"], spec["options"])
    fit = match_size(encode, a, target)  # the highest quality not above target
    q, data = fit["quality"], encode(a, fit["quality"])
    if not fit["over_budget"] and q < 100:
        above = encode(a, q + 1)
        if abs(len(above) - target) < abs(len(data) - target):
            q, data = q + 1, above
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"))
    return data, rgb, q


def measure(
    label: dict[str, Any],
    originals: Sequence[np.ndarray],
    decoded: Sequence[np.ndarray],
    sizes: Sequence[int],
    names: Sequence[str],
    crop: int | None,
    steps: int,
    seed: int,
) -> dict[str, Any]:
    from gancomp.evaluation.realism import high_frequency_ratio, two_sample_accuracy
    from gancomp.evaluation.roundtrip import summarise

    summary = summarise(label.get("level"), originals, decoded, sizes)
    test = two_sample_accuracy(originals, decoded, names, crop=crop, steps=steps, seed=seed)
    row = {
        **label,
        "mean_bytes": float(np.mean(sizes)),
        "bpp": summary["bpp"],
        "psnr": summary["psnr"],
        "ms_ssim": summary["ms_ssim"],
        "two_sample": test,
        "hf_ratio": high_frequency_ratio(originals, decoded),
    }
    print(
        f"  {row['codec']:<8} L{row['level']} {row['setting']:<10} bpp {row['bpp']:.3f}  "
        f"PSNR {row['psnr']:.2f}  accuracy {test['accuracy']:.3f} +- {test['standard_error']:.3f}"
        f"  HF {row['hf_ratio']:.3f}",
        file=sys.stderr,
        flush=True,
    )
    return row


def table_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    out = []
    for r in rows:
        t = r["two_sample"]
        out.append(
            [
                r["category"],
                str(r["level"]),
                r["codec"] if r["codec"] != "gancomp" else f"gancomp {r['setting']}",
                f"{r['bpp']:.3f}",
                f"{r['psnr']:.2f}",
                f"{t['accuracy']:.3f} ± {t['standard_error']:.3f}",
                f"{r['hf_ratio']:.2f}",
            ]
        )
    return out


HEADERS = ["category", "level", "codec", "bpp", "PSNR (dB)", "two-sample accuracy", "HF ratio"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="image folder (searched recursively)")
    parser.add_argument("--category", required=True, help="gancomp model")
    parser.add_argument("--levels", default="1,2", help="gancomp levels (default: %(default)s)")
    parser.add_argument(
        "--realism",
        type=parse_realism,
        default=[0.0],
        help="decode-time realism weights in [0, 1], e.g. 0,0.5,1 (default: 0)",
    )
    parser.add_argument("--codecs", default="webp,avif", help="(default: %(default)s)")
    add_models_dir_option(parser)
    parser.add_argument("--limit", type=int, help="use only the first N images")
    parser.add_argument(
        "--crop",
        type=int,
        help=f"critic crop side (default: whole images up to {DEFAULT_CROP} pixels, "
        f"else {DEFAULT_CROP}; 0 = whole images)",
    )
    parser.add_argument("--steps", type=int, help="critic training steps (default: 400)")
    parser.add_argument("--seed", type=int, default=0, help="critic seed (default: 0)")
    parser.add_argument("--json", type=Path, help="write every measure to this JSON file")
    parser.add_argument("--force", action="store_true", help="overwrite the --json file")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()

    from gancomp.errors import GancompError
    from gancomp.evaluation.bench import (
        codec_available,
        list_images,
        load_rgb,
        parse_codecs,
        parse_levels,
        write_json,
    )
    from gancomp.evaluation.realism import DEFAULT_STEPS
    from gancomp.evaluation.roundtrip import round_trip
    from gancomp.io.files import check_writable_target
    from gancomp.runtime.codec import load_codec

    try:
        levels = parse_levels(args.levels)
        codecs = parse_codecs(args.codecs)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        if args.json:
            check_writable_target(args.json, args.force)
        files = list_images(args.folder, args.limit)
        images = load_rgb(files)
        codec = load_codec(args.category, args.models_dir)
        from gancomp.training._tf import tf

        tf()  # the critic needs TensorFlow: fail before the long run
    except GancompError as exc:
        sys.exit(f"error: {exc}")
    bad = [q for q in levels if not 1 <= q <= codec.levels]
    if bad:
        parser.error(f"level {bad[0]}: the {args.category!r} model has levels 1-{codec.levels}")
    # Split key: the path under FOLDER (the file name, unique even in sub-folders).
    names = [f.relative_to(args.folder).as_posix() for f in files]
    if args.crop == 0:
        crop = None
    elif args.crop:
        crop = args.crop
    else:
        small = max(max(a.shape[:2]) for a in images) <= DEFAULT_CROP
        crop = None if small and len({a.shape for a in images}) == 1 else DEFAULT_CROP
    steps = args.steps or DEFAULT_STEPS

    notes = []
    decode_at = realism_decoder(codec, args.models_dir)
    weights = args.realism
    asked = ", ".join(f"{r:g}" for r in weights)
    if any(r != 0 for r in weights):
        if decode_at is None:
            notes.append(
                f"gancomp.decompress takes no realism weight: only r = 0 was measured (asked for {asked})"
            )
            weights = [0.0]
        elif not getattr(codec, "has_realism", True):
            notes.append(
                f"the {args.category} model at {codec.folder.path} has no realism branches: "
                f"only r = 0 was measured (asked for {asked})"
            )
            weights = [0.0]
    skipped = {n: why for n in codecs if (why := codec_available(n))}
    for n, why in skipped.items():
        notes.append(f"{n} skipped: {why}")
    for note in notes:
        print(note, file=sys.stderr)

    crop_text = "whole images" if crop is None else f"{crop}x{crop} crops"
    print(
        f"{args.category} model {codec.folder.fingerprint}: {len(images)} images of "
        f"{args.folder}, critic on {crop_text}, {steps} steps, seed {args.seed}",
        file=sys.stderr,
    )
    rows: list[dict[str, Any]] = []
    common = {"category": args.category}
    for level in levels:
        coded = round_trip(codec, images, level)
        for r in weights:
            decoded = coded.decoded if r == 0 else decode_at(coded.blobs, r)
            label = {**common, "level": level, "codec": "gancomp", "setting": f"r={r:g}"}
            rows.append(measure(label, images, decoded, coded.sizes, names, crop, steps, args.seed))
        for name in codecs:
            if name in skipped:
                continue
            matched = [closest_size(name, a, n) for a, n in zip(images, coded.sizes)]
            label = {
                **common,
                "level": level,
                "codec": name,
                "setting": "same bytes",
                "qualities": [q for _, _, q in matched],
            }
            decoded = [rgb for _, rgb, _ in matched]
            sizes = [len(data) for data, _, _ in matched]
            over = sum(q == 0 and n > t for (_, _, q), n, t in zip(matched, sizes, coded.sizes))
            label["over_budget"] = over
            if over:
                notes.append(
                    f"{name} at level {level}: even quality 0 is larger than the .gcz file for "
                    f"{over} of {len(images)} images"
                )
            rows.append(measure(label, images, decoded, sizes, names, crop, steps, args.seed))

    caption = (
        f"{args.category}, {len(images)} images of {args.folder} (model "
        f"{codec.folder.fingerprint}); codecs at the quality closest to each .gcz file's size; "
        f"critic: {crop_text}, {steps} steps, accuracy ± binomial standard error "
        "(0.5 = indistinguishable); HF ratio: spectral power above Nyquist/2, reconstruction "
        "over original"
    )
    table = table_rows(rows)
    if args.markdown:
        print(caption + "\n")
        print(markdown_table(HEADERS, table))
    else:
        print(caption)
        widths = [max(len(x) for x in col) for col in zip(HEADERS, *table)]
        for line in [HEADERS, *table]:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    if notes:
        print("\n" + "\n".join(f"Note: {note}" for note in notes))
    if args.json:
        result = {
            "category": args.category,
            "folder": str(args.folder),
            "images": len(images),
            "model_fingerprint": codec.folder.fingerprint,
            "crop": crop,
            "steps": steps,
            "seed": args.seed,
            "notes": notes,
            "rows": rows,
        }
        write_json(result, args.json, force=args.force)
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
