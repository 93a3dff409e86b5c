#!/usr/bin/env python
"""One point of a learning curve: BD-rate of a model against WebP, AVIF and JPEG on a fixed
subset of a val split, recorded with its training steps and hours (issue 12).

    python scripts/learning_curve.py runs/v2/flower_hp.ckpt --hours 4.1 \\
        --record docs/results/learning_curve_flower.json
    python scripts/learning_curve.py models/flower --hours 3.2 --label "v1 shipped" ...
    python scripts/learning_curve.py --record docs/results/learning_curve_flower.json \\
        --table --plot docs/results/learning_curve_flower.png      # render only

MODEL is an exported model folder or a training checkpoint folder (``<output>.ckpt``, exported
to a temporary model folder first: needs the ``train`` extra). The subset is every
``--every``-th image of the sorted split (100 of flowers/val's 500 with the default 5, spread
over all classes), the same for every point. The classical codecs' curves on the subset
are computed once and kept in the record file. Whole-file rates, as ``gancomp bench``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gancomp.evaluation.bench import (
    DEFAULT_CODECS,
    bd_rate_report,
    list_images,
    load_rgb,
    run_bench,
)

METRICS = ("psnr", "ms_ssim_db")


def export_checkpoint(ckpt: Path, out: Path) -> int:
    """Export the weights of a training checkpoint as a model folder; returns its step."""
    import numpy as np

    from gancomp.runtime.models import write_model_folder
    from gancomp.training.model import GANModel, ModelConfig
    from gancomp.training.trainer import export_files

    cfg = ModelConfig.from_dict(json.loads((ckpt / "config.json").read_text()))
    model = GANModel(cfg, name="gancodec")
    model.build_all()
    with np.load(ckpt / "checkpoint.npz") as z:
        for v in model.weights:
            v.assign(z[f"m/{v.path}"])
        step = int(z["step"])
    config_json, weights, tables = export_files(model)
    meta = {"category": cfg.category, "training": {"checkpoint": str(ckpt), "step": step}}
    write_model_folder(out, config_json, weights, tables, meta)
    return step


def anchors(record: dict, files: list[Path], codecs: list[str], category: str, models: Path):
    """The classical codecs' curves on the subset, computed once per record file."""
    key = [f.name for f in files]
    cached = record.get("anchors")
    if cached and cached["files"] == key and all(c in cached["curves"] for c in codecs):
        return cached["curves"]
    result = run_bench(category, files, codecs=codecs, levels=[1], models_dir=models)
    curves = {c: result["curves"][c] for c in codecs if c in result["curves"]}
    record["anchors"] = {"files": key, "curves": curves}
    return curves


def measure(model: Path, category: str, files: list[Path], record: dict, codecs) -> dict:
    models = model.parent
    if model.name != category:  # run_bench finds models by category name
        link = Path(tempfile.mkdtemp(prefix="curve-models.")) / category
        link.symlink_to(model.resolve())
        models = link.parent
    rgb = load_rgb(files)
    anchor_curves = anchors(record, files, codecs, category, models)
    g = run_bench(category, rgb, codecs=[], models_dir=models)["curves"]["gancomp"]
    bd = {
        c: {
            m: bd_rate_report(
                [p["bpp"] for p in curve],
                [p[m] for p in curve],
                [p["bpp"] for p in g],
                [p[m] for p in g],
            )["bd_rate"]
            for m in METRICS
        }
        for c, curve in anchor_curves.items()
    }
    return {
        "curve": [{k: p[k] for k in ("quality", "bpp", "psnr", "ms_ssim_db")} for p in g],
        "bd_rate": bd,
    }


def table(record: dict) -> str:
    codecs = list(record.get("anchors", {}).get("curves", {}))
    head = ["model", "steps", "hours", "PSNR span dB"] + [
        f"vs {c} (PSNR / MS-SSIM)" for c in codecs
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def pct(v):
        return "n/a" if v is None else f"{v:+.1f}%"

    for p in record["points"]:
        span = f"{p['curve'][0]['psnr']:.1f} to {p['curve'][-1]['psnr']:.1f}"
        cells = [p["label"], f"{p['step']:,}", f"{p['hours']:.1f}", span]
        cells += [
            f"{pct(p['bd_rate'][c]['psnr'])} / {pct(p['bd_rate'][c]['ms_ssim_db'])}" for c in codecs
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    pts = sorted(record["points"], key=lambda p: p["hours"])
    # One line per lineage (the point's "lineage", else its label's first word: "v1",
    # "v2"); every lineage grows out of the first point, so a branch is never drawn as a
    # step of another.
    lineages: dict[str, list[dict]] = {}
    for p in pts:
        lineages.setdefault(p.get("lineage") or p["label"].split()[0], []).append(p)
    styles = ["o-", "s--", "^:", "d-."]
    for i, c in enumerate(record["anchors"]["curves"]):
        color = f"C{i}"
        for j, (name, branch) in enumerate(lineages.items()):
            line = branch if branch[0] is pts[0] else [pts[0], *branch]
            line = [p for p in line if p["bd_rate"][c]["psnr"] is not None]
            xs = [p["hours"] for p in line]
            ys = [p["bd_rate"][c]["psnr"] for p in line]
            ax.plot(xs, ys, styles[j % len(styles)], color=color, label=f"{name} vs {c}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("training hours (2 CPU cores)")
    ax.set_ylabel("BD-rate on PSNR (%)")
    ax.set_title(
        f"{record['category']}: learning curve ({len(record['anchors']['files'])} val images)"
    )
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", type=Path, help="model folder or checkpoint folder")
    ap.add_argument("--category", default="flower")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/flowers/val"))
    ap.add_argument("--every", type=int, default=5, help="take every N-th image (5)")
    ap.add_argument("--hours", type=float, help="training hours behind the model")
    ap.add_argument("--step", type=int, help="training steps (read from a checkpoint)")
    ap.add_argument("--label", help="name of the point (default: the model path)")
    ap.add_argument(
        "--lineage", help="line of the plot the point belongs to (default: the label's first word)"
    )
    ap.add_argument("--record", type=Path, required=True, help="JSON file of the curve")
    ap.add_argument("--codecs", default=",".join(DEFAULT_CODECS))
    ap.add_argument("--table", action="store_true", help="print the curve as markdown")
    ap.add_argument("--plot", type=Path, help="write BD-rate against hours (.png)")
    args = ap.parse_args()

    record = (
        json.loads(args.record.read_text())
        if args.record.exists()
        else {"category": args.category, "points": []}
    )
    if args.model:
        if args.hours is None:
            ap.error("--hours is needed with a model")
        files = list_images(args.data)[:: args.every]
        codecs = args.codecs.split(",")
        with tempfile.TemporaryDirectory() as tmp:
            model, step = args.model, args.step
            if (model / "checkpoint.npz").is_file():
                exported = Path(tmp) / args.category
                ckpt_step = export_checkpoint(model, exported)
                model, step = exported, step if step is not None else ckpt_step
            point = measure(model, args.category, files, record, codecs)
        point.update(label=args.label or str(args.model), step=step or 0, hours=args.hours)
        if args.lineage:
            point["lineage"] = args.lineage
        record["points"].append(point)
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(record, indent=1) + "\n")
        print(json.dumps({k: point[k] for k in ("label", "step", "hours", "bd_rate")}))
    if args.table:
        print(table(record))
    if args.plot:
        plot(record, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
