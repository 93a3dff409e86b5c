"""Encode and decode real images as other machines would: one subprocess per OpenBLAS kernel
(``OPENBLAS_CORETYPE``) and thread count (``OPENBLAS_NUM_THREADS``).

    python scripts/cross_kernel.py --category flower --images tests/data/flower_0.jpg \\
        tests/data/flower_1.jpg --quality 1 4 8 [--realism 1] [--markdown docs/results/cross_kernel.md]

For every setting the child process compresses each image, decodes the file
written by the reference setting (the first one), and reports the hash of its
bytes, of the decoded latents, and of the decoded pixels. The parent compares
each setting with the reference: the latents decoded from one file must be
identical everywhere (exit status 1 otherwise); bytes written and pixels are
reported with how far they differ. With ``--realism R`` the pixels are also decoded at
realism R (the realism branches and their position noise) and compared the same way. A forced kernel whose process dies of a signal
(one for instructions this CPU lacks) is listed as not runnable and skipped. The
tests never set OPENBLAS_CORETYPE (some machines set it on purpose); this script
is where kernels are forced.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

CORETYPES = ["", "Prescott", "Nehalem", "Sandybridge", "Haswell", "Zen", "SkylakeX", "Cooperlake"]
THREADS = ["1", "2"]

CHILD = r"""
import hashlib, json, sys
from pathlib import Path
import numpy as np
import gancomp
from gancomp.coding.container import unpack
from gancomp.runtime.codec import load_codec

args = json.loads(sys.argv[1])
out = {}
for src in args["images"]:
    for q in args["qualities"]:
        key = f"{src}@{q}"
        data = gancomp.compress(src, category=args["category"], quality=q, models_dir=args["models_dir"])
        ref_path = Path(args["ref_dir"]) / (hashlib.sha256(key.encode()).hexdigest()[:16] + ".gcz")
        if not ref_path.exists():
            ref_path.write_bytes(data)
        ref = ref_path.read_bytes()
        header, payload = unpack(ref)
        lat = load_codec(header.category, args["models_dir"]).decode_latents([(header, payload)])[0]
        mine = load_codec(header.category, args["models_dir"]).decode_latents([unpack(data)])[0]
        pix = gancomp.decompress(ref, models_dir=args["models_dir"])
        np.save(Path(args["ref_dir"]) / (ref_path.stem + "." + args["tag"] + ".npy"), pix)
        if args["realism"]:
            real = gancomp.decompress(ref, models_dir=args["models_dir"], realism=args["realism"])
            np.save(Path(args["ref_dir"]) / (ref_path.stem + "." + args["tag"] + ".r.npy"), real)
        out[key] = {
            "bytes": hashlib.sha256(data).hexdigest(),
            "n_bytes": len(data),
            "latents_written_moved": int(np.count_nonzero(mine != lat)),
            "latents_decoded": hashlib.sha256(lat.tobytes()).hexdigest(),
            "pixels": hashlib.sha256(pix.tobytes()).hexdigest(),
            "npy": str(ref_path.stem + "." + args["tag"] + ".npy"),
        }
print(json.dumps(out))
"""


def main() -> int:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--category", default="flower")
    ap.add_argument("--images", nargs="+", default=["tests/data/flower_0.jpg"])
    ap.add_argument("--quality", nargs="+", type=int, default=[4])
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--coretypes", nargs="+", default=CORETYPES)
    ap.add_argument("--realism", type=float, default=0.0, help="also compare decodes at this r")
    ap.add_argument("--markdown", help="also write the table to this file")
    a = ap.parse_args()
    settings = [(c, t) for c in a.coretypes for t in THREADS]
    rows, results, skipped = [], {}, []
    with tempfile.TemporaryDirectory() as ref_dir:
        for core, threads in settings:
            env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
            if core:
                env["OPENBLAS_CORETYPE"] = core
            env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = threads
            tag = f"{core or 'auto'}-{threads}"
            spec = {
                "category": a.category,
                "images": a.images,
                "qualities": a.quality,
                "models_dir": a.models_dir,
                "ref_dir": ref_dir,
                "tag": tag,
                "realism": a.realism,
            }
            r = subprocess.run(
                [sys.executable, "-c", CHILD, json.dumps(spec)],
                capture_output=True,
                text=True,
                env=env,
            )
            if r.returncode < 0 and core:
                # A kernel for instructions this CPU lacks (SkylakeX on an AVX2-only
                # machine) dies of SIGILL: no other machine's result, so skip it.
                skipped.append(f"{tag} ({signal.Signals(-r.returncode).name})")
                print(f"{tag}: not runnable on this CPU ({skipped[-1]})", file=sys.stderr)
                continue
            if r.returncode:
                print(f"{tag}: child failed: {r.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                return 1
            results[tag] = json.loads(r.stdout)
        ref_tag = next(iter(results))
        ok = True
        for tag, res in results.items():
            for key, v in res.items():
                ref = results[ref_tag][key]
                same_lat = v["latents_decoded"] == ref["latents_decoded"]
                ok &= same_lat
                a_pix = np.load(Path(ref_dir) / ref["npy"]).astype(np.int16)
                b_pix = np.load(Path(ref_dir) / v["npy"]).astype(np.int16)
                d = np.abs(a_pix - b_pix)
                realism_cells = ()
                if a.realism:
                    a_real, b_real = (
                        np.load(Path(ref_dir) / (x["npy"][: -len(".npy")] + ".r.npy"))
                        for x in (ref, v)
                    )
                    a_real, b_real = a_real.astype(np.int16), b_real.astype(np.int16)
                    dr = np.abs(a_real - b_real)
                    realism_cells = (int(dr.max()), int(np.count_nonzero(dr)))
                rows.append(
                    (
                        tag,
                        key,
                        "yes"
                        if v["bytes"] == ref["bytes"]
                        else f"no ({v['latents_written_moved']} latents moved)",
                        "yes" if same_lat else "NO",
                        int(d.max()),
                        int(np.count_nonzero(d)),
                        *realism_cells,
                    )
                )
    head = "| kernel-threads | image@quality | same bytes written | same latents decoded | max pixel diff | pixels differing |"
    if a.realism:
        head += f" max diff at r = {a.realism:g} | differing at r = {a.realism:g} |"
    lines = [
        f"Reference: {ref_tag}. numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"category {a.category}, models {a.models_dir or 'shipped'}.",
        "",
        head,
        "|" + "---|" * (8 if a.realism else 6),
    ]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    if skipped:
        lines += ["", f"Kernels this CPU cannot run (killed by a signal): {', '.join(skipped)}."]
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text + "\n")
    print("latents identical in every setting" if ok else "LATENTS DIFFER", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
