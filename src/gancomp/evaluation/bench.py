"""Rate-distortion benchmark of a gancomp model against JPEG, WebP and AVIF (Pillow).

Every codec encodes the same RGB images in memory; a point of a curve is one quality
setting, with the mean over images of bpp (whole file, headers included), PSNR, MS-SSIM,
MSE and L1 (:func:`gancomp.evaluation.roundtrip.summarise`) and the mean coding times.

The curves are compared with the Bjontegaard delta rate (G. Bjontegaard, "Calculation of
average PSNR differences between RD-curves", ITU-T SG16 Q.6 VCEG-M33, Austin, April 2001):
see :func:`bd_rate`.

Encoder efforts (:mod:`gancomp.refine`): the first effort asked for is the ``gancomp`` curve,
compared with the classical codecs; every further effort E is a ``gancomp-E`` curve beside
it, with its BD-rate against the first (``effort_bd_rate``).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gancomp.errors import GancompError, InputError
from gancomp.evaluation.roundtrip import round_trip, summarise

#: Classical codecs: Pillow format, fixed save options and the quality sweep.
#: 4:4:4 for JPEG and AVIF: at equal bpp it gives a higher RGB PSNR than 4:2:0 on both
#: CIFAR-10 and the flower photos, and 4:2:0 caps JPEG/AVIF near 38-39 dB on 32x32
#: images. WebP lossy is always 4:2:0. Quality 0 (WebP, AVIF) and 1 (JPEG) reach the
#: lowest PSNR each codec can produce.
CODECS: dict[str, dict[str, Any]] = {
    "jpeg": {
        "format": "JPEG",
        "options": {"optimize": True, "subsampling": "4:4:4"},
        "qualities": [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
        "feature": "jpg",
    },
    "webp": {
        "format": "WEBP",
        "options": {"method": 6},
        "qualities": [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100],
        "feature": "webp",
    },
    "avif": {
        "format": "AVIF",
        "options": {"subsampling": "4:4:4", "speed": 6},
        "qualities": [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
        "feature": "avif",
    },
}
DEFAULT_CODECS = ("jpeg", "webp", "avif")
METRICS = ("psnr", "ms_ssim_db")  # distortions the BD-rate is computed on


# -- argument parsing ---------------------------------------------------------------


def parse_levels(text: str) -> list[int]:
    """Quality levels from "1-8", "1,3,5", "4" or a mix ("1-3,8"): sorted, unique, >= 1."""
    levels: set[int] = set()
    for part in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"bad level list {text!r} (use e.g. 1-8, 1,3,5 or 4)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if lo < 1 or hi < lo:
            raise ValueError(f"bad level range {part!r} in {text!r}")
        levels.update(range(lo, hi + 1))
    return sorted(levels)


def parse_efforts(text: str) -> list[str]:
    """Encoder efforts from "normal", "normal,max" (order kept, duplicates dropped)."""
    from gancomp.refine import EFFORTS

    return _parse_names(text, EFFORTS, "effort")


def curve_name(effort: str, first: str) -> str:
    """The curve of an effort: ``gancomp`` for the first effort asked for, else
    ``gancomp-<effort>``."""
    return "gancomp" if effort == first else f"gancomp-{effort}"


def parse_codecs(text: str) -> list[str]:
    """Codec names from "jpeg,webp,avif" (order kept, duplicates dropped)."""
    return _parse_names(text, CODECS, "codec")


def _parse_names(text: str, choices, what: str) -> list[str]:
    """Comma-separated names among ``choices``, order kept, duplicates dropped."""
    names: list[str] = []
    for part in text.replace(" ", "").lower().split(","):
        if not part:
            continue
        if part not in choices:
            raise ValueError(f"unknown {what} {part!r} (choose from {', '.join(choices)})")
        if part not in names:
            names.append(part)
    if not names:
        raise ValueError(f"no {what} given (choose from " + ", ".join(choices) + ")")
    return names


def list_images(folder: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Image files in ``folder`` and its sub-folders (as ``train`` reads them), sorted by
    path, the first ``limit``."""
    from gancomp.io.images import IMAGE_SUFFIXES, find_images

    d = Path(folder)
    if not d.exists():
        raise InputError(f"data folder '{d}' does not exist")
    if not d.is_dir():
        raise InputError(f"data folder '{d}' is not a folder")
    files = find_images(d)
    if not files:
        raise InputError(f"no images in '{d}' (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files[:limit] if limit else files


def load_rgb(files: Sequence[str | os.PathLike]) -> list[np.ndarray]:
    """HxWx3 uint8 pixels as the metrics see them (alpha composited on white)."""
    from gancomp.io.images import load_image, to_rgb_for_metrics

    return [np.ascontiguousarray(to_rgb_for_metrics(load_image(f))) for f in files]


# -- BD-rate ------------------------------------------------------------------------


def _monotonic(rates: Sequence[float], dists: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by rate, keeping only those whose distortion strictly increases.

    A quality sweep can give a point that costs more bits for no better (or worse)
    quality, and equal settings can give identical files; such points would make
    log(rate) a non-function of distortion and bend the cubic fit, so they are dropped.
    Non-finite values and rates <= 0 are dropped too.
    """
    pts = sorted(
        (float(r), float(d))
        for r, d in zip(rates, dists)
        if math.isfinite(r) and math.isfinite(d) and r > 0
    )
    kept: list[tuple[float, float]] = []
    for r, d in pts:
        if not kept or d > kept[-1][1]:
            kept.append((r, d))
    return np.array([p[0] for p in kept]), np.array([p[1] for p in kept])


def bd_rate_report(
    rates_a: Sequence[float],
    dists_a: Sequence[float],
    rates_b: Sequence[float],
    dists_b: Sequence[float],
) -> dict[str, Any]:
    """BD-rate of curve B against anchor A, with the reason when it cannot be computed.

    Keys: ``bd_rate`` (percent or None), ``reason`` (None or why not), ``interval``
    (the overlapping distortion range integrated over) and ``points_a`` / ``points_b``
    (points left after :func:`_monotonic`).
    """
    ra, da = _monotonic(rates_a, dists_a)
    rb, db = _monotonic(rates_b, dists_b)
    out: dict[str, Any] = {
        "bd_rate": None,
        "reason": None,
        "interval": None,
        "points_a": len(ra),
        "points_b": len(rb),
    }
    if len(ra) < 4 or len(rb) < 4:
        out["reason"] = (
            f"needs >= 4 monotonic points per curve (anchor has {len(ra)}, test has {len(rb)})"
        )
        return out
    lo, hi = max(da.min(), db.min()), min(da.max(), db.max())
    if not hi > lo:
        out["reason"] = (
            f"distortion ranges do not overlap ({da.min():.2f}-{da.max():.2f} vs "
            f"{db.min():.2f}-{db.max():.2f})"
        )
        return out
    # Centre the distortion axis: a better-conditioned cubic fit, same integral.
    c = 0.5 * (lo + hi)
    pa = np.polyint(np.polyfit(da - c, np.log(ra), 3))
    pb = np.polyint(np.polyfit(db - c, np.log(rb), 3))
    area_a = np.polyval(pa, hi - c) - np.polyval(pa, lo - c)
    area_b = np.polyval(pb, hi - c) - np.polyval(pb, lo - c)
    mean_diff = (area_b - area_a) / (hi - lo)
    out["bd_rate"] = float((math.exp(mean_diff) - 1.0) * 100.0)
    out["interval"] = [float(lo), float(hi)]
    return out


def bd_rate(
    rates_a: Sequence[float],
    dists_a: Sequence[float],
    rates_b: Sequence[float],
    dists_b: Sequence[float],
) -> float | None:
    """Bjontegaard delta rate (VCEG-M33, 2001) of curve B against anchor curve A, in percent.

    Each curve's log(rate) is fitted as a cubic polynomial of the distortion (a quality
    in dB, higher = better: PSNR, MS-SSIM dB); both fits are integrated over the
    distortion interval the two curves share, and the mean difference of log(rate)
    gives ``(exp(diff) - 1) * 100``. Negative: B needs that many percent fewer bits than
    A for the same quality. With more than 4 points the fit is least squares.

    Before fitting, each curve is made monotonic: sorted by rate, and a point is dropped
    when its distortion is not higher than that of the previous kept point.

    Returns None when a curve has fewer than 4 points left or the distortion ranges do
    not overlap (:func:`bd_rate_report` gives the reason).
    """
    return bd_rate_report(rates_a, dists_a, rates_b, dists_b)["bd_rate"]


# -- coding -------------------------------------------------------------------------


def codec_available(name: str) -> str | None:
    """None if Pillow can write ``name`` here, else the reason it cannot."""
    from PIL import features

    feature = CODECS[name]["feature"]
    try:
        ok = features.check(feature)
    except ValueError:  # a Pillow too old to know the feature
        ok = False
    if not ok:
        return f"Pillow was built without {CODECS[name]['format']} support"
    return None


def _pillow_point(name: str, quality: int, images: Sequence[np.ndarray]) -> dict[str, Any]:
    from PIL import Image

    spec = CODECS[name]
    blobs, decoded = [], []
    t_enc = t_dec = 0.0
    for a in images:
        pil = Image.fromarray(a, "RGB")
        buf = io.BytesIO()
        t0 = time.perf_counter()
        pil.save(buf, spec["format"], quality=quality, **spec["options"])
        t1 = time.perf_counter()
        data = buf.getvalue()
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
        t2 = time.perf_counter()
        t_enc += t1 - t0
        t_dec += t2 - t1
        blobs.append(data)
        decoded.append(rgb)
    return _row(quality, images, decoded, blobs, t_enc, t_dec)


def _row(quality, images, decoded, blobs, t_enc: float, t_dec: float) -> dict[str, Any]:
    row = summarise(quality, images, decoded, [len(b) for b in blobs])
    row["bytes"] = int(sum(len(b) for b in blobs))
    row["encode_s_per_image"] = t_enc / len(images)
    row["decode_s_per_image"] = t_dec / len(images)
    return row


def _gancomp_point(
    codec, quality: int, images: Sequence[np.ndarray], effort: str = "normal", schedule=None
) -> dict[str, Any]:
    from gancomp.refine import refines

    if not refines(effort, schedule):
        rt = round_trip(codec, images, quality)
        return _row(quality, images, rt.decoded, rt.blobs, rt.encode_seconds, rt.decode_seconds)
    from gancomp.coding.container import unpack
    from gancomp.refine import compress_images

    t0 = time.perf_counter()
    blobs = compress_images(codec, images, quality, effort, schedule=schedule)
    t1 = time.perf_counter()
    decoded = [d.rgb for d in codec.decode_payloads([unpack(b) for b in blobs])]
    t2 = time.perf_counter()
    return _row(quality, images, decoded, blobs, t1 - t0, t2 - t1)


def _warm_up(effort: str, schedules: dict[str, Any]):
    """Two iterations of an effort's schedule (None for normal): enough to compile it."""
    from gancomp.refine import SCHEDULES

    schedule = schedules.get(effort, SCHEDULES.get(effort))
    if schedule is None:
        return None
    return dataclasses.replace(schedule, iterations=min(2, schedule.iterations))


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="bench", unit="point", disable=not enabled, file=sys.stderr)


def run_bench(
    category: str,
    images: Sequence[np.ndarray] | Sequence[str | os.PathLike],
    codecs: Sequence[str] = DEFAULT_CODECS,
    levels: Sequence[int] | None = None,
    models_dir: str | os.PathLike | None = None,
    progress: bool = False,
    qualities: dict[str, Sequence[int]] | None = None,
    efforts: Sequence[str] = ("normal",),
    schedules: dict[str, Any] | None = None,
    anchors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rate-distortion curves of the ``category`` model and of classical codecs, and BD-rates.

    ``images`` are HxWx3 uint8 arrays or image paths; ``levels`` the gancomp quality
    levels (default: all); ``qualities`` optionally overrides a codec's quality sweep.
    Codecs Pillow cannot write are skipped (listed under ``skipped``). BD-rates are
    gancomp against each codec (anchor) on PSNR and MS-SSIM dB; negative = gancomp
    needs fewer bits. The result is JSON-serialisable once infinities are handled
    (means are finite: summarise caps PSNR at 100 dB).

    ``efforts`` (:mod:`gancomp.refine`): the first is the ``gancomp`` curve; each further one
    adds a ``gancomp-<effort>`` curve and its BD-rates against the first under
    ``effort_bd_rate``. ``schedules`` optionally replaces an effort's schedule.

    ``anchors``, an earlier result on the same images (checked by ``images_sha256``),
    supplies the curves of the codecs it holds, measured with the same settings (sweep,
    options, library version), instead of encoding again: the classical curves do not
    change with the model, and on photos they are most of the run.
    """
    from PIL import __version__ as pillow_version

    from gancomp import __version__
    from gancomp.runtime.codec import load_codec

    rgb = [a if isinstance(a, np.ndarray) else load_rgb([a])[0] for a in images]
    if not rgb:
        raise InputError("no images to benchmark")
    for a in rgb:
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise InputError(f"expected HxWx3 uint8 images, got {a.dtype} {a.shape}")
    codecs = list(codecs)
    for name in codecs:
        if name not in CODECS:
            raise InputError(f"unknown codec {name!r} (choose from {', '.join(CODECS)})")
    from gancomp.refine import check_effort, require_refiner

    efforts = list(dict.fromkeys(efforts))
    if not efforts:
        raise InputError("no effort to benchmark")
    for effort in efforts:
        check_effort(effort)
        require_refiner(effort)  # TensorFlow, before the (long) run
    schedules = schedules or {}
    codec = load_codec(category, models_dir)
    levels = sorted(set(levels)) if levels else list(range(1, codec.levels + 1))
    bad = [q for q in levels if not 1 <= q <= codec.levels]
    if bad:
        raise InputError(
            f"level {bad[0]} out of range: the {category!r} model has levels 1-{codec.levels}"
        )
    skipped = {n: r for n in codecs if (r := codec_available(n))}
    run = [n for n in codecs if n not in skipped]
    sweeps = {n: list((qualities or {}).get(n, CODECS[n]["qualities"])) for n in run}
    for n, qs in sweeps.items():
        if not qs or any(not 0 <= q <= 100 for q in qs):
            raise InputError(f"{n}: qualities must be a non-empty list of 0-100, got {qs}")

    digest = images_digest(rgb)
    wanted = {n: _classical_settings(n, sweeps[n]) for n in run}
    reused = _anchor_curves(anchors, digest, wanted) if anchors is not None else {}
    names = {e: curve_name(e, efforts[0]) for e in efforts}
    curves: dict[str, list[dict[str, Any]]] = {names[e]: [] for e in efforts}
    total = len(levels) * len(efforts) + sum(len(sweeps[n]) for n in run if n not in reused)
    with _progress(total, progress) as bar:
        for effort in efforts:
            # Warm-up: the first call builds the network and traces the graph (with an effort
            # that refines: imports TensorFlow, per level); keep it out of the timings.
            for q in levels if effort != "normal" else levels[:1]:
                _gancomp_point(codec, q, rgb[:1], effort, _warm_up(effort, schedules))
            for q in levels:
                bar.set_postfix_str(f"{names[effort]} {q}")
                point = _gancomp_point(codec, q, rgb, effort, schedules.get(effort))
                curves[names[effort]].append(point)
                bar.update(1)
        for name in run:
            if name in reused:
                curves[name] = reused[name]
                continue
            curves[name] = []
            _pillow_point(name, sweeps[name][0], rgb[:1])  # warm-up (library init), untimed
            for q in sweeps[name]:
                bar.set_postfix_str(f"{name} {q}")
                curves[name].append(_pillow_point(name, q, rgb))
                bar.update(1)

    bd: dict[str, dict[str, Any]] = {}
    g = curves["gancomp"]
    effort_bd = {
        names[e]: {
            m: bd_rate_report(
                [p["bpp"] for p in g],
                [p[m] for p in g],
                [p["bpp"] for p in curves[names[e]]],
                [p[m] for p in curves[names[e]]],
            )
            for m in METRICS
        }
        for e in efforts[1:]
    }
    for name in run:
        c = curves[name]
        bd[name] = {
            m: bd_rate_report(
                [p["bpp"] for p in c], [p[m] for p in c], [p["bpp"] for p in g], [p[m] for p in g]
            )
            for m in METRICS
        }
    # Each further effort against the codecs too, as bd_rate does for the first.
    effort_codec_bd = {
        names[e]: {
            name: {
                m: bd_rate_report(
                    [p["bpp"] for p in curves[name]],
                    [p[m] for p in curves[name]],
                    [p["bpp"] for p in curves[names[e]]],
                    [p[m] for p in curves[names[e]]],
                )
                for m in METRICS
            }
            for name in run
        }
        for e in efforts[1:]
    }

    settings: dict[str, Any] = {}
    for e in efforts:
        settings[names[e]] = {"levels": levels, "effort": e}
        if e in schedules:
            settings[names[e]]["schedule"] = dataclasses.asdict(schedules[e])
    settings.update(wanted)  # a reused curve was measured with exactly these settings
    result = {
        "category": category,
        "model_fingerprint": codec.folder.fingerprint,
        "model_path": str(codec.folder.path),
        "images": len(rgb),
        "images_sha256": digest,
        "pixels": int(sum(a.shape[0] * a.shape[1] for a in rgb)),
        "codecs": run,
        "skipped": skipped,
        "settings": settings,
        "curves": curves,
        "bd_rate": bd,
        "bd_rate_note": "gancomp vs each codec as anchor; negative = gancomp needs fewer bits",
        "efforts": efforts,
        "effort_bd_rate": effort_bd,
        "effort_codec_bd_rate": effort_codec_bd,
        "versions": {"gancomp": __version__, "pillow": pillow_version},
    }
    if reused:
        result["anchor_codecs"] = sorted(reused)  # curves taken from ``anchors``, not re-encoded
    return result


def images_digest(images: Sequence[np.ndarray]) -> str:
    """SHA-256 over the images' shapes and pixels, in order: which images a bench ran on."""
    import hashlib

    h = hashlib.sha256()
    for a in images:
        h.update(repr(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _lib_version(feature: str) -> str | None:
    from PIL import features

    try:
        return features.version(feature)
    except ValueError:
        return None


def _classical_settings(name: str, qualities: list[int]) -> dict[str, Any]:
    """What a classical codec's curve depends on: format, options, sweep, library version."""
    return {
        "format": CODECS[name]["format"],
        "options": dict(CODECS[name]["options"]),
        "qualities": qualities,
        "library_version": _lib_version(CODECS[name]["feature"]),
    }


def _anchor_curves(anchors: dict[str, Any], digest: str, wanted: dict[str, dict]) -> dict:
    """The curves (name -> curve) that the earlier result ``anchors`` holds for the codecs of
    ``wanted`` (name -> the settings this run would use). A codec measured with other
    settings (another sweep, other options, another library version) is not taken: it is
    encoded again. An :class:`InputError` if ``anchors`` is not a bench result on the same
    images."""
    try:
        same = anchors["images_sha256"] == digest
        held = {
            n: anchors["curves"][n]
            for n, settings in wanted.items()
            if n in anchors.get("codecs", ()) and anchors["settings"][n] == settings
        }
    except (KeyError, TypeError):
        raise InputError(
            "the anchors file is not a bench result with images_sha256 (from --json)"
        ) from None
    if not same:
        raise InputError("the anchors file was measured on other images (images_sha256 differs)")
    return held


# -- output -------------------------------------------------------------------------


def _fmt(v: float, digits: int) -> str:
    return "inf" if math.isinf(v) else f"{v:.{digits}f}"


def format_tables(result: dict[str, Any]) -> str:
    """The points of every curve and the BD-rate table, as plain text."""
    head = (
        *("codec", "setting", "bpp", "PSNR", "MS-SSIM", "MS-SSIM dB"),
        *("MSE", "L1", "enc ms", "dec ms"),
    )
    rows = []
    for name, points in result["curves"].items():
        for p in points:
            rows.append(
                (
                    name,
                    f"{'level' if _is_gancomp(name) else 'q'}={p['quality']}",
                    f"{p['bpp']:.4f}",
                    _fmt(p["psnr"], 2),
                    f"{p['ms_ssim']:.5f}",
                    _fmt(p["ms_ssim_db"], 2),
                    f"{p['mse']:.2f}",
                    f"{p['l1']:.3f}",
                    f"{p['encode_s_per_image'] * 1000:.2f}",
                    f"{p['decode_s_per_image'] * 1000:.2f}",
                )
            )
    efforts = result.get("efforts", ["normal"])
    lines = [
        f"{result['category']} model {result['model_fingerprint']}, {result['images']} images"
        + ("" if efforts == ["normal"] else f", gancomp = effort {efforts[0]}"),
        "",
    ]
    if result.get("anchor_codecs"):
        reused = ", ".join(result["anchor_codecs"])
        lines[1:1] = [f"curves of {reused} reused from the anchors file (not encoded again)"]
    lines += _table(head, rows, left=2)
    if result.get("effort_bd_rate"):
        lines += ["", f"BD-rate of each effort vs effort {efforts[0]} (negative = fewer bits)"]
        effort_rows = []
        for name, per_metric in result["effort_bd_rate"].items():
            cells = [name]
            for m in METRICS:
                r = per_metric[m]
                cells.append(f"{r['bd_rate']:+.1f}%" if r["bd_rate"] is not None else "n/a")
            effort_rows.append(tuple(cells))
        lines += _table(("curve", "PSNR", "MS-SSIM dB"), effort_rows, left=1)
        for name, per_metric in result["effort_bd_rate"].items():
            for m in METRICS:
                if per_metric[m]["reason"]:
                    lines.append(f"  {name} {m}: n/a: {per_metric[m]['reason']}")
    lines += ["", "BD-rate of gancomp vs each codec (Bjontegaard; negative = gancomp saves bits)"]
    bd_rows = []
    further = result.get("effort_codec_bd_rate", {})
    for name, per_metric in result["bd_rate"].items():
        cells = [name]
        for reports in (per_metric, *(by_codec[name] for by_codec in further.values())):
            for m in METRICS:
                r = reports[m]
                cells.append(f"{r['bd_rate']:+.1f}%" if r["bd_rate"] is not None else "n/a")
        bd_rows.append(tuple(cells))
    if bd_rows:
        head = ["codec", "PSNR", "MS-SSIM dB"]
        for curve in further:
            head += [f"PSNR ({curve})", f"MS-SSIM dB ({curve})"]
        lines += _table(head, bd_rows, left=1)
        for name, per_metric in result["bd_rate"].items():
            for m in METRICS:
                r = per_metric[m]
                if r["reason"]:
                    lines.append(f"  {name} {m}: n/a: {r['reason']}")
                else:
                    lo, hi = r["interval"]
                    lines.append(f"  {name} {m}: over {lo:.2f}-{hi:.2f} dB")
    else:
        lines.append("  (no classical codec ran)")
    return "\n".join(lines)


def _is_gancomp(curve: str) -> bool:
    return curve == "gancomp" or curve.startswith("gancomp-")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> list[str]:
    """Columns: the first ``left`` left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(
            f"{c:<{w}}" if i < left else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths))
        ).rstrip()

    return [line(head), *(line(r) for r in rows)]


def _finite(obj: Any) -> Any:
    """JSON has no infinities: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(result: dict[str, Any], path: str | os.PathLike, force: bool = False) -> None:
    """Write ``result`` as JSON atomically; refuse to overwrite unless ``force``."""
    import json

    from gancomp.io.files import atomic_write_bytes

    text = json.dumps(_finite(result), indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode(), force=force)


def read_anchors(path: str | os.PathLike) -> dict[str, Any]:
    """An earlier ``--json`` result, for ``run_bench(anchors=...)``; :class:`InputError`
    (one line) if it cannot be read or is not JSON."""
    import json

    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"cannot read the anchors file {path}: {exc.strerror}") from None
    except ValueError as exc:  # also UnicodeDecodeError
        raise InputError(f"the anchors file {path} is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"the anchors file {path} is not a bench result")
    return doc


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise GancompError("--plot needs matplotlib: pip install 'gancomp[plot]'") from None
    return Figure, FigureCanvasAgg


def check_plot_target(path: str | os.PathLike, force: bool = False) -> str:
    """Fail early (before the benchmark runs) if the plot cannot be written; the format."""
    from gancomp.io.files import check_writable_target

    _matplotlib()
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf", "svg"):
        raise GancompError(f"--plot: unsupported extension for '{path}' (use .png, .pdf or .svg)")
    check_writable_target(path, force)
    return fmt


def write_plot(result: dict[str, Any], path: str | os.PathLike, force: bool = False) -> None:
    """PSNR and MS-SSIM dB against bpp, one line per codec, written atomically."""
    from gancomp.io.files import atomic_write_bytes

    fmt = check_plot_target(path, force)
    Figure, FigureCanvasAgg = _matplotlib()
    # Figure + Agg canvas directly: no pyplot, so no global backend state is touched.
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    labels = {"psnr": "PSNR (dB)", "ms_ssim_db": "MS-SSIM dB = -10 log10(1 - MS-SSIM)"}
    for ax, m in zip(axes, METRICS):
        for name, points in result["curves"].items():
            pts = sorted((p["bpp"], p[m]) for p in points if math.isfinite(p[m]))
            if not pts:
                continue
            style = {"linewidth": 2.2, "marker": "o"} if _is_gancomp(name) else {"marker": "."}
            label = name
            if not _is_gancomp(name):
                v = result["bd_rate"].get(name, {}).get(m, {}).get("bd_rate")
                label += f" (gancomp BD-rate {v:+.1f}%)" if v is not None else ""
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(labels[m])
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(
        f"{result['category']} (model {result['model_fingerprint']}), {result['images']} images"
    )
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120)
    atomic_write_bytes(path, buf.getvalue(), force=force)
