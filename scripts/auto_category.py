#!/usr/bin/env python
"""How ``--category auto`` chooses on the three val splits mixed together.

All images of the airplane, automobile and flower val splits are shuffled into one
list (fixed seed) and compressed with ``--category auto`` at each level
(:func:`gancomp.runtime.auto.choose_auto`, the function the CLI and the API use),
in batches that mix the three kinds. Reported per level: how often a flower gets
the flower model, how often a CIFAR image gets a CIFAR model and how often its own
CIFAR model, what each kind of image was given, and, from the same candidate files,
what the previous rule (highest PSNR within 0.1 dB, then the smallest file) would
have chosen. Results go to OUT/auto_category.json.

Usage::

    nice -n 19 python scripts/auto_category.py --jobs 3        # levels 1, 4 and 8
    nice -n 19 python scripts/auto_category.py --levels 1-8 --limit 50

The JSON file is rewritten after each level, so a long run keeps what it has done.
``--jobs N`` runs N levels at once in separate processes: on a machine whose cores
are busy with training, each niced process gets a share of what is left over.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import math
import random
import sys
import time
from typing import Any

from _results_common import CATEGORIES, add_common_options, data_folder, markdown_table, write_json

CIFAR = ("airplane", "automobile")
BATCH = 64


def psnr(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def previous_rule(cands) -> str:
    """The rule before this change: highest PSNR within 0.1 dB, then the smallest file."""
    best = max(psnr(c.mse) for c in cands)
    ok = [c for c in cands if psnr(c.mse) >= best - 0.1]
    return min(ok, key=lambda c: (len(c.data), c.category)).category


def summarise(truth: list[str], chosen: list[str]) -> dict[str, Any]:
    given = {t: collections.Counter() for t in CATEGORIES}
    for t, c in zip(truth, chosen):
        given[t][c] += 1
    n_cifar = sum(given[t].total() for t in CIFAR)
    return {
        "flower_to_flower": given["flower"]["flower"],
        "flowers": given["flower"].total(),
        "cifar_to_cifar": sum(given[t][m] for t in CIFAR for m in CIFAR),
        "cifar_to_own": sum(given[t][t] for t in CIFAR),
        "cifar_images": n_cifar,
        "given": {t: dict(sorted(given[t].items())) for t in CATEGORIES},
    }


def mean_of(values: list[float], truth: list[str], kinds: tuple[str, ...]) -> float:
    sel = [v for v, t in zip(values, truth) if t in kinds]
    return sum(sel) / len(sel)


def run_level(quality: int, items: list[tuple[str, str]], models_dir, cats) -> dict[str, Any]:
    """Auto on every image at one level; ``items`` are (true category, path), mixed."""
    from gancomp.io.images import load_image
    from gancomp.runtime.auto import choose_auto

    t0 = time.perf_counter()
    truth = [t for t, _ in items]
    images = [load_image(p) for _, p in items]
    chosen, before, own_bpp, own_db, auto_bpp, auto_db = [], [], [], [], [], []
    for start in range(0, len(images), BATCH):
        lam, choices = choose_auto(images[start : start + BATCH], quality, models_dir, cats)
        for t, ch in zip(truth[start : start + BATCH], choices):
            chosen.append(ch.chosen.category)
            before.append(previous_rule(ch.candidates))
            own = next(c for c in ch.candidates if c.category == t)
            own_bpp.append(own.bpp)
            own_db.append(psnr(own.mse))
            auto_bpp.append(ch.chosen.bpp)
            auto_db.append(psnr(ch.chosen.mse))
    return {
        "quality": quality,
        "lambda": lam,
        "auto": summarise(truth, chosen),
        "previous_rule": summarise(truth, before),
        "mean_bpp_psnr": {
            kind: {
                "auto": [mean_of(auto_bpp, truth, kinds), mean_of(auto_db, truth, kinds)],
                "own_model": [mean_of(own_bpp, truth, kinds), mean_of(own_db, truth, kinds)],
            }
            for kind, kinds in (("cifar", CIFAR), ("flower", ("flower",)))
        },
        "seconds": round(time.perf_counter() - t0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument(
        "--levels", default="1,4,8", help="quality levels, e.g. 1-8 or 1,4,8 (default: %(default)s)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="levels run at once (processes)")
    args = parser.parse_args()

    from gancomp.runtime.codec import load_codec
    from gancomp.runtime.models import available_categories

    if "-" in args.levels:
        lo, hi = map(int, args.levels.split("-"))
        levels = list(range(lo, hi + 1))
    else:
        levels = [int(v) for v in args.levels.split(",")]
    cats = available_categories(args.models_dir)
    items = []  # (true category, path)
    for t in CATEGORIES:
        files = sorted(p for p in data_folder(args.data_root, t).iterdir() if p.is_file())
        items += [(t, str(p)) for p in files[: args.limit]]
    random.Random(0).shuffle(items)
    truth = [t for t, _ in items]
    print(f"{len(items)} images, candidates {', '.join(cats)}", file=sys.stderr)
    models = {c: load_codec(c, args.models_dir) for c in cats}

    def save(per_level: list[dict[str, Any]]) -> None:
        write_json(
            {
                "command": "nice -n 19 python " + " ".join(sys.argv),
                "rule": "smallest bpp + lambda * MSE(0-255); lambda = geometric mean of the "
                "candidates' trained lambdas at the level (gancomp.runtime.auto)",
                "models": {
                    c: {"path": str(m.folder.path), "fingerprint": m.folder.fingerprint}
                    for c, m in models.items()
                },
                "data": {
                    t: {"folder": str(data_folder(args.data_root, t)), "images": truth.count(t)}
                    for t in CATEGORIES
                },
                "levels": sorted(per_level, key=lambda r: r["quality"]),
                "note": "given[true category][model] = images of that category given that model; "
                "mean_bpp_psnr: [mean bpp, mean PSNR dB] of auto's choice and of the image's own "
                "model; previous_rule: the same counts for the highest-PSNR rule on the same files",
            },
            args.out / "auto_category.json",
        )

    per_level: list[dict[str, Any]] = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_level, q, items, args.models_dir, cats) for q in levels]
        for done in concurrent.futures.as_completed(futures):
            row = done.result()
            per_level.append(row)
            save(per_level)
            a = row["auto"]
            print(
                f"level {row['quality']}: flowers {a['flower_to_flower']}/{a['flowers']}, "
                f"CIFAR {a['cifar_to_cifar']}/{a['cifar_images']} (own {a['cifar_to_own']}) "
                f"in {row['seconds']} s",
                file=sys.stderr,
            )
    per_level.sort(key=lambda r: r["quality"])

    def frac(n: int, d: int) -> str:
        return f"{n}/{d} ({100 * n / d:.1f}%)"

    rows = []
    for r in per_level:
        a, b = r["auto"], r["previous_rule"]
        rows.append(
            [
                str(r["quality"]),
                f"{r['lambda']:.4g}",
                frac(a["flower_to_flower"], a["flowers"]),
                frac(a["cifar_to_cifar"], a["cifar_images"]),
                frac(a["cifar_to_own"], a["cifar_images"]),
                f"{b['flower_to_flower']} / {b['cifar_to_cifar']} / {b['cifar_to_own']}",
            ]
        )
    print(
        markdown_table(
            [
                "level",
                "lambda",
                "flower -> flower model",
                "CIFAR -> a CIFAR model",
                "CIFAR -> its own model",
                "previous rule (same three)",
            ],
            rows,
        )
    )
    print(f"wrote {args.out / 'auto_category.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
