#!/usr/bin/env python
"""Cross-category rate-distortion: every category's val set coded with every category's model.

For each data set (airplane, automobile, flower val splits) and each model, all quality
levels are run through the real bitstream (:func:`gancomp.evaluation.bench.run_bench`, no classical
codecs). The table has one row per data set and one column per model; a cell gives the
BD-rate on PSNR of that model against the data set's own model (own model = 0 by
definition; positive = the foreign model needs more bits), then the mean PSNR and mean bpp
at --level (default 4). All curves go to OUT/cross_category.json.

Usage::

    python scripts/cross_category.py --models-dir runs/final --limit 20
    python scripts/cross_category.py --categories airplane,automobile --out /tmp/cross
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _results_common import (
    CATEGORIES as ALL_CATEGORIES,
)
from _results_common import (
    add_common_options,
    data_folder,
    load_images,
    markdown_table,
    models_dir,
    write_json,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--level", type=int, default=4, help="level of the PSNR/bpp columns")
    parser.add_argument(
        "--categories",
        default=",".join(ALL_CATEGORIES),
        help="comma-separated data sets and models (default: all three)",
    )
    args = parser.parse_args()
    categories = [c for c in args.categories.split(",") if c]
    if unknown := sorted(set(categories) - set(ALL_CATEGORIES)):
        parser.error(f"unknown categories: {', '.join(unknown)}")

    from gancomp.evaluation.bench import bd_rate_report, run_bench

    mdir = models_dir(args.models_dir)
    data = {d: load_images(data_folder(args.data_root, d), args.limit) for d in categories}
    curves: dict[str, dict[str, list[dict[str, Any]]]] = {d: {} for d in categories}
    model_info: dict[str, dict[str, str]] = {}
    for m in categories:  # model outer: each model is built once
        for d in categories:
            print(f"{m} model on {d} ({len(data[d][1])} images)", file=sys.stderr)
            r = run_bench(m, data[d][1], codecs=(), models_dir=mdir)
            curves[d][m] = r["curves"]["gancomp"]
            model_info[m] = {"path": r["model_path"], "fingerprint": r["model_fingerprint"]}

    def at_level(points: list[dict[str, Any]]) -> dict[str, Any]:
        return next(p for p in points if p["quality"] == args.level)

    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for d in categories:
        own = curves[d][d]
        cells[d] = {}
        for m in categories:
            pts, p = curves[d][m], at_level(curves[d][m])
            if m == d:
                rep = {"bd_rate": 0.0, "reason": "own model (0 by definition)"}
            else:
                rep = bd_rate_report(
                    [q["bpp"] for q in own], [q["psnr"] for q in own],
                    [q["bpp"] for q in pts], [q["psnr"] for q in pts],
                )  # fmt: skip
            cells[d][m] = {"bd_rate_psnr": rep, "psnr": p["psnr"], "bpp": p["bpp"]}

    def cell(c: dict[str, Any], own: bool) -> str:
        v = c["bd_rate_psnr"]["bd_rate"]
        bd = "0 (own)" if own else "n/a" if v is None else f"{v:+.1f}%"
        return f"{bd} / {c['psnr']:.2f} dB / {c['bpp']:.3f} bpp"

    print(
        f"BD-rate (PSNR) against the data set's own model / mean PSNR / mean bpp at level "
        f"{args.level}; positive BD-rate = more bits than the own model\n"
    )
    rows = [
        [f"{d} ({len(data[d][1])} img)"] + [cell(cells[d][m], m == d) for m in categories]
        for d in categories
    ]
    print(markdown_table(["data set \\ model"] + [f"{m} model" for m in categories], rows))
    notes = [
        f"- {m} model on {d}: BD-rate n/a: {cells[d][m]['bd_rate_psnr']['reason']}"
        for d in categories
        for m in categories
        if m != d and cells[d][m]["bd_rate_psnr"]["bd_rate"] is None
    ]
    if notes:
        print("\n" + "\n".join(notes))

    write_json(
        {
            "level": args.level,
            "models": model_info,
            "data": {
                d: {"folder": str(data_folder(args.data_root, d)), "images": len(data[d][1])}
                for d in categories
            },
            "table": cells,
            "table_note": "rows = data set, columns = model; BD-rate on PSNR of the model "
            "against the data set's own model (anchor); psnr/bpp: means at 'level'",
            "curves": curves,
        },
        args.out / "cross_category.json",
    )
    print(f"\nwrote {args.out / 'cross_category.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
