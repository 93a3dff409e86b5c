"""The realism phase (``gancomp train --init-from MODEL --realism-phase``).

It adds realism branches to a trained model's generator
(:func:`gancomp.architecture.realism_synthesis`) and trains only them, with the
discriminator; encoder, entropy model, gains and the fidelity generator stay frozen, so
rates, bitstreams and the model's fingerprint do not change and r = 0 is the fidelity
decoder exactly. Per example, r ~ U[0, 1], x0 the fidelity decoder's reconstruction and
xr the one at r:

    loss = dB(xr) + r * (beta * adversarial + feature_matching * FM + texture * TEX
                         + whole_image * WHOLE)

dB(xr) = 10 log10(MSE(xr) / MSE(x0)) is the PSNR given up against the fidelity decoder:
a cost in the same units at every level. (With the training loss lambda_l * MSE instead,
the top level's lambda, 500 times the lowest's, outweighed everything: the branches, which
do not know the level, stayed at the identity.) The adversarial loss is the non-saturating
one of the latent-conditioned discriminator; FM the L1 distance between the
discriminator's hidden activations on the original and on the reconstruction
(pix2pixHD's feature matching: a perceptual term with no downloaded network); TEX
(:func:`texture_distance`) the gap in local high-frequency energy, per luma and chroma
channel, between xr and the original, relative to x0's gap (1 = as blurred as the
fidelity decoder, 0 = detail as strong as the original's, wherever it sits); WHOLE
(``--whole-image``, default off) the non-saturating loss of an unconditional whole-image
critic trained alongside (:meth:`~gancomp.training.model.Discriminator.whole_logit`): the
patch discriminator sees the latent and averages its patches, so an artefact that is
implausible in any image but rare per patch costs it little. The discriminator learns
from reconstructions at every r (with ``--disc-weight-by-realism`` each example's loss is
weighted by 2r, so it learns most from the reconstructions the adversarial term acts on,
as the two-sample test's critic does). With ``--r1 gamma`` its loss adds gamma / 2 times
the squared gradient of its logits with respect to the original (the R1 penalty of
Mescheder et al., ICML 2018), which keeps it smooth, so it cannot simply overpower the
generator. Its accuracy on originals and on reconstructions is logged (``d_acc_real``,
``d_acc_fake``) to show whether it learns at all.

The exported folder is the source model's ``config.json``, ``weights.npz`` and
``tables.npz`` (and ``density.npz`` when it has one) byte for byte (kept in
``<output>.ckpt/base`` for ``--resume``) plus the realism add-on
(:mod:`gancomp.runtime.realism`).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from gancomp.errors import InputError
from gancomp.training._tf import tf as _import_tf

#: The adversarial weight of the realism phase when --beta is not given: far above the
#: first GAN phase's 0.01, which left the discriminator near chance.
REALISM_BETA = 0.5
DEFAULT_BRANCHES = 2
#: The discriminator's learning rate in this phase when --disc-lr is not given.
REALISM_DISC_LR = 4e-4
TEXTURE_WINDOW = 8  # pixels: the local windows of texture_distance
BASE_FOLDER = "base"  # in the checkpoint folder: the frozen model's files
SETTINGS = (
    "realism_phase",
    "realism_branches",
    "feature_matching",
    "texture",
    "realism_levels",
    "whole_image",
    "realism_pixel_branch",
    "realism_noise",
    "disc_weight_by_realism",
    "r1",
    "realism_ema",
)  # kept on --resume (--realism-ema may also be given there: trainer.py, overridable)


def check_source(s, src) -> None:
    """The realism phase keeps the source model exactly: no option may change it."""
    from gancomp.runtime.realism import has_realism

    changes = [
        (s.entropy_model and s.entropy_model != src.config.get("entropy_model", "factorized"))
        and "--entropy-model",
        s.lambdas and "--lambdas",
        s.freeze_transforms and "--freeze-transforms",
    ]
    changes = [c for c in changes if c]
    if changes:
        raise InputError(f"--realism-phase keeps the model as it is: drop {', '.join(changes)}")
    if s.category != src.category:
        raise InputError(
            f"--realism-phase keeps the model as it is: its category is {src.category!r}, "
            f"not {s.category!r}"
        )
    if has_realism(src):
        print(
            f"gancomp: note: {src.path} has realism branches already; this run trains new ones",
            flush=True,
        )


def branch_count(s, cfg) -> int:
    from gancomp import architecture

    most = architecture.realism_branch_count_max({"num_down": cfg.num_down})
    branches = s.realism_branches or min(DEFAULT_BRANCHES, most)
    if not 1 <= branches <= most:
        raise InputError(f"--realism-branches must be 1..{most} for this model, got {branches}")
    return branches


def check_levels(s, cfg) -> None:
    if s.realism_levels is not None and s.realism_levels > cfg.levels:
        raise InputError(
            f"--realism-levels must be 1..{cfg.levels} for this model, got {s.realism_levels}"
        )


def base_from_folder(src) -> dict:
    from gancomp.runtime.models import FILES
    from gancomp.training.trainer import DENSITY_FILE

    files = {name: (src.path / name).read_bytes() for name in FILES}
    if (src.path / DENSITY_FILE).is_file():  # kept, so a later --init-from has the densities
        files[DENSITY_FILE] = (src.path / DENSITY_FILE).read_bytes()
    return {"files": files, "metadata": src.metadata, "fingerprint": src.fingerprint}


def save_base(ckpt_dir: Path, base: dict) -> None:
    """The frozen model's files beside the checkpoint, once: a resumed run exports them."""
    folder = ckpt_dir / BASE_FOLDER
    if folder.is_dir():
        return
    tmp = ckpt_dir / f".{BASE_FOLDER}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    for name, data in base["files"].items():
        (tmp / name).write_bytes(data)
    (tmp / "metadata.json").write_text(json.dumps(base["metadata"], indent=2, sort_keys=True))
    tmp.rename(folder)


def load_base(ckpt_dir: Path) -> dict:
    from gancomp.runtime.models import read_model_folder

    folder = ckpt_dir / BASE_FOLDER
    if not folder.is_dir():
        raise InputError(f"--resume: the realism run's model is missing ({folder})")
    src = read_model_folder(folder)
    return base_from_folder(src)


def branch_weights(model) -> list:
    """The realism branches' weights (realism.npz)."""
    return [w for layer in model.realism_layers() for w in layer.trainable_weights]


def load_branches(model, folder: str | Path) -> None:
    """Start ``model``'s branches (and its per-level scale of r) from the realism add-on of
    model folder ``folder`` (``--realism-from``): a warm start for the add-on of a base
    model trained further. The add-on's fingerprint is not checked, its shapes are: the
    same branches, pixel branch and widths."""
    from gancomp.runtime.realism import REALISM_JSON, REALISM_WEIGHTS
    from gancomp.training.trainer import assign_checked

    where = f"--realism-from {folder}"
    path = Path(folder)
    try:
        description = json.loads((path / REALISM_JSON).read_text())
        with np.load(path / REALISM_WEIGHTS, allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(f"{where}: the folder has no realism add-on") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{where}: cannot read its realism add-on ({exc})") from None
    if not isinstance(description, dict):
        raise InputError(f"{where}: {REALISM_JSON} is not an add-on description")
    pixel = bool(description.get("pixel_branch", False))
    if description.get("branches") != model.realism_branches or pixel != bool(
        model.realism_pixel_branch
    ):
        raise InputError(
            f"{where}: its add-on has {description.get('branches')} branches"
            f"{' and the pixel branch' if pixel else ''}; this run has "
            f"{model.realism_branches}{' and the pixel branch' if model.realism_pixel_branch else ''}"
            " (--realism-branches, --realism-pixel-branch)"
        )
    targets = {w.path: w for w in branch_weights(model)}
    if set(stored) != set(targets):
        odd = sorted(set(stored) ^ set(targets))[0]
        raise InputError(f"{where}: its branch weights do not match this model's (first: {odd})")
    assign_checked(targets, stored, where)
    scale = description.get("level_scale")
    if isinstance(scale, list) and len(scale) == model.realism_level_scale.shape[0]:
        model.realism_level_scale.assign(np.asarray(scale, np.float32))


def ema_variables(trained: list) -> list:
    """The moving average of ``trained`` (--realism-ema): one float32 copy per weight, and
    last the count of updates so far. Adversarial training leaves the weights wandering
    from step to step around a point; their average is the steadier generator (Karras et al.
    2018, "Progressive growing of GANs"; Yazici et al. 2019, "The unusual effectiveness of
    averaging in GAN training")."""
    tf = _import_tf()
    copies = [
        tf.Variable(tf.cast(w, tf.float32), trainable=False, name=f"ema{i}")
        for i, w in enumerate(trained)
    ]
    return [*copies, tf.Variable(0.0, trainable=False, name="ema_updates")]


def ema_update(ema: list, trained: list, decay: float) -> None:
    """One step of the average: ``a <- d a + (1 - d) w`` with ``d = min(decay, n / (n + 10))``
    after ``n`` updates, so the first update copies the weights and the early average does
    not hold on to where the run started."""
    tf = _import_tf()
    *copies, count = ema
    d = tf.minimum(decay, count / (count + 10.0))
    for a, w in zip(copies, trained):
        a.assign(d * a + (1.0 - d) * tf.cast(w, tf.float32))
    count.assign_add(1.0)


def exported_values(trainer) -> dict[str, np.ndarray]:
    """The trained weights' values to export, by path: their moving average with
    --realism-ema, else the weights themselves."""
    if not trainer.ema_vars:
        return {w.path: np.asarray(w.numpy()) for w in trainer.g_vars}
    return {w.path: np.asarray(a.numpy()) for w, a in zip(trainer.g_vars, trainer.ema_vars)}


def trained_weights(model, s) -> list:
    """What the phase trains: the branches, and the per-level scale of r unless
    --realism-levels fixes it."""
    return branch_weights(model) + ([] if s.realism_levels else [model.realism_level_scale])


def level_scale(model, levels):
    """The per-level scale of r at ``levels`` (B,), clipped to [0, 1] as exported."""
    tf = _import_tf()
    return tf.clip_by_value(tf.gather(model.realism_level_scale, levels), 0.0, 1.0)


#: RGB -> YCbCr (ITU-R BT.601 matrix, rows Y, Cb, Cr): texture_distance compares detail per
#: luma and chroma channel, so colour speckle (high frequencies that disagree between the
#: RGB channels, which photos rarely have) costs as much as missing luma detail.
_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ],
    np.float32,
)


def texture_energy(im, window: int = TEXTURE_WINDOW):
    """Local RMS (0-255 units) of the high frequencies of ``im`` (NHWC RGB, 0-1) in Y, Cb
    and Cr, over windows of ``window`` pixels: shape (N, H / window, W / window, 3).

    High frequencies are the image minus its 3x3 box blur; their RMS per window and
    channel is a texture energy that ignores where exactly the detail sits. Matched per
    RGB channel, independent noise in each channel (a colour speckle) would match it too;
    per luma and chroma channel, chroma noise is a distance of its own.
    """
    tf = _import_tf()
    im = tf.tensordot(im, tf.constant(_YCBCR.T), axes=1)
    high = im - tf.nn.avg_pool2d(im, 3, 1, "SAME")
    power = tf.nn.avg_pool2d(tf.square(high * 255.0), window, window, "SAME")
    return tf.sqrt(power + 1e-4)


def texture_distance(energy, energy_hat):
    """Per example: mean L1 distance between two :func:`texture_energy` maps, the
    original's first (no gradient flows into it). The step computes the original's map
    once and compares both decodes with it."""
    tf = _import_tf()
    return tf.reduce_mean(tf.abs(energy_hat - tf.stop_gradient(energy)), axis=[1, 2, 3])


def build_step(trainer):
    """The compiled realism step of a :class:`~gancomp.training.trainer.Trainer`."""
    tf = _import_tf()
    model, s = trainer.model, trainer.s
    gb = s.batch_size
    levels_n = s.realism_levels or trainer.cfg.levels
    if s.realism_levels:  # r acts on the trained levels only
        mask = np.arange(trainer.cfg.levels) < s.realism_levels
        model.realism_level_scale.assign(mask.astype(np.float32))
    disc = model.discriminator
    whole = disc.whole is not None  # built when --whole-image > 0 (Trainer)

    def mean(v):
        return tf.nn.compute_average_loss(v, global_batch_size=gb)

    def d_update(x, x_hat, cond, weight):
        with tf.GradientTape() as tape:
            with tf.GradientTape(watch_accessed_variables=False) as r1_tape:
                r1_tape.watch(x)
                real = disc(x, cond)
                w_real = disc.whole_logit(x)[:, 0] if whole else None
                if s.r1:
                    # Per example: the mean patch logit (and the whole-image logit), as
                    # the losses weigh them; summed, as examples do not interact.
                    judged = tf.reduce_sum(tf.reduce_mean(real, 1) + (w_real if whole else 0.0))
            fake = disc(x_hat, cond)
            d_loss = tf.reduce_mean(tf.nn.softplus(-real), 1) + tf.reduce_mean(
                tf.nn.softplus(fake), 1
            )
            if s.r1:
                slope = r1_tape.gradient(judged, x)
                d_loss += 0.5 * s.r1 * tf.reduce_sum(tf.square(slope), axis=[1, 2, 3])
            whole_acc = None
            if whole:
                w_fake = disc.whole_logit(x_hat)[:, 0]
                d_loss += tf.nn.softplus(-w_real) + tf.nn.softplus(w_fake)
                whole_acc = 0.5 * tf.cast(w_real > 0, tf.float32) + 0.5 * tf.cast(
                    w_fake < 0, tf.float32
                )
            loss = mean(weight * d_loss)
        grads = tape.gradient(loss, trainer.d_vars)
        trainer.opt_d.apply_gradients(zip(grads, trainer.d_vars))
        acc_real = tf.reduce_mean(tf.cast(real > 0, tf.float32), 1)
        acc_fake = tf.reduce_mean(tf.cast(fake < 0, tf.float32), 1)
        return d_loss, acc_real, acc_fake, whole_acc

    def step_fn(x):
        b = tf.shape(x)[0]
        levels = tf.random.uniform([b], 0, levels_n, tf.int32)
        r = tf.random.uniform([b])
        # Frozen encoder and entropy model: the rounded latents the decoder gets. No rate
        # is logged: the phase trains no density, and a source without density.npz has
        # none to compute it with.
        coded = model.coded_latent(x, levels, training=False)
        latent = tf.stop_gradient(coded["latent"])
        x_fidelity = tf.cast(model.generator(latent), tf.float32)
        mse_fidelity = tf.reduce_mean(tf.square((x_fidelity - x) * 255.0), axis=[1, 2, 3])
        energy_x = texture_energy(x)
        tex_fidelity = texture_distance(energy_x, texture_energy(x_fidelity))
        with tf.GradientTape() as tape:
            r_level = r * level_scale(model, levels)  # what the decoder runs at
            x_hat = tf.cast(model.generator(latent, realism=r_level), tf.float32)
            mse = tf.reduce_mean(tf.square((x_hat - x) * 255.0), axis=[1, 2, 3])
            db_cost = (10.0 / math.log(10.0)) * (
                tf.math.log(mse + 1e-3) - tf.math.log(mse_fidelity + 1e-3)
            )
            with tape.stop_recording():
                # 2r: mean 1 over r ~ U[0, 1], so the discriminator's step size is kept.
                d_weight = 2.0 * r if s.disc_weight_by_realism else tf.ones_like(r)
                d_loss, acc_real, acc_fake, whole_acc = d_update(
                    x, tf.stop_gradient(x_hat), latent, d_weight
                )
                _, real_features = disc(x, latent, features=True)
            fake, fake_features = disc(x_hat, latent, features=True)
            g_adv = tf.reduce_mean(tf.nn.softplus(-fake), 1)
            fm = tf.add_n(
                [
                    tf.reduce_mean(tf.abs(f - tf.stop_gradient(g)), axis=[1, 2, 3])
                    for f, g in zip(fake_features, real_features)
                ]
            ) / len(fake_features)
            tex = texture_distance(energy_x, texture_energy(x_hat)) / (tex_fidelity + 1e-3)
            realism_terms = s.beta * g_adv + s.feature_matching * fm + s.texture * tex
            if whole:
                g_whole = tf.nn.softplus(-disc.whole_logit(x_hat)[:, 0])
                realism_terms += s.whole_image * g_whole
            per = db_cost + r * realism_terms
            loss = mean(per)
        grads = tape.gradient(loss, trainer.g_vars)
        trainer.opt_g.apply_gradients(zip(grads, trainer.g_vars))
        psnr = 10.0 * tf.math.log(255.0**2 / tf.maximum(mse, 1e-10)) / math.log(10.0)
        return {
            "loss": loss,
            "psnr": mean(psnr),
            "db_cost": mean(db_cost),
            "d_loss": mean(d_loss),
            "g_adv": mean(g_adv),
            "fm": mean(fm),
            "tex": mean(tex),
            "d_acc_real": mean(acc_real),
            "d_acc_fake": mean(acc_fake),
            **({"whole_acc": mean(whole_acc)} if whole else {}),
        }

    replica_step = tf.function(step_fn, jit_compile=True) if s.jit else step_fn

    @tf.function
    def run(it):
        x = next(it)
        res = trainer.strategy.run(replica_step, args=(x,))
        if trainer.ema_vars:
            ema_update(trainer.ema_vars, trainer.g_vars, s.realism_ema)
        return {
            k: trainer.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in res.items()
        }

    return run


def _write_add_on(trainer, out: Path, elapsed: float, steps_run: int, stats: dict) -> str:
    """Write the source model's files as they were plus the realism add-on (the moving
    average when there is one) to ``out``; returns the fingerprint."""
    import os
    import platform
    from dataclasses import asdict

    from gancomp.runtime.models import write_model_files
    from gancomp.runtime.realism import realism_files

    s, model, base = trainer.s, trainer.model, trainer.realism_base
    config = json.loads(base["files"]["config.json"])
    values = exported_values(trainer)
    weights = {w.path: values[w.path] for w in branch_weights(model)}
    level_scale_now = values.get(model.realism_level_scale.path, model.realism_level_scale.numpy())
    scale = np.clip(level_scale_now, 0.0, 1.0).astype(np.float32)
    add_on = realism_files(
        config,
        base["fingerprint"],
        model.realism_branches,
        weights,
        scale.tolist(),
        pixel_branch=model.realism_pixel_branch,
        noise=model.realism_noise,
    )
    meta = {
        **base["metadata"],
        "realism": {
            "branches": model.realism_branches,
            "pixel_branch": model.realism_pixel_branch,
            "noise": model.realism_noise,
            "level_scale": [round(float(v), 4) for v in scale],
            "training": {
                **{k: v for k, v in asdict(s).items() if k not in ("extra", "progress")},
                "patch_size": trainer.patch,
                "train_images": len(trainer.train_set),
                "step": trainer.step,
                "seconds_this_run": round(elapsed, 1),
                "steps_this_run": steps_run,
                "final_train_stats": stats,
                "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            },
        },
    }
    files = {**base["files"], **add_on}
    # force: the trainer refused an existing --output at the start (without --resume); a
    # resumed run's export and a snapshot of a step passed again replace their own folders.
    return write_model_files(out, files, meta, force=True)


def snapshot_folder(output: Path, step: int) -> Path:
    """Where ``--snapshot-every`` writes the add-on of ``step``: OUTPUT.snapshots/step-N."""
    return output.with_name(output.name + ".snapshots") / f"step-{step}"


def write_snapshot(trainer, elapsed: float, steps_run: int) -> None:
    """``--snapshot-every``: the model folder the run would export now (no validation table;
    a resumed run that passes the step again replaces it)."""
    _write_add_on(trainer, snapshot_folder(trainer.out, trainer.step), elapsed, steps_run, {})


def export(trainer, elapsed: float, steps_run: int, stats: dict) -> dict:
    """The source model's files as they were plus the realism add-on; with validation
    images, the mean PSNR at r = 0, 0.5 and 1 for the two lowest qualities."""
    from gancomp.runtime.models import update_metadata

    s = trainer.s
    fp = _write_add_on(trainer, trainer.out, elapsed, steps_run, stats)
    result = {"output": str(trainer.out), "fingerprint": fp, "steps": trainer.step}
    if trainer.val_set is not None:
        table = realism_validation(trainer.out, trainer.val_set.images[: s.val_limit])
        update_metadata(trainer.out, realism_validation=table)
        result["realism_validation"] = table
    result["skipped"] = trainer.train_set.skipped
    return result


def realism_validation(
    folder: Path, images: list, qualities=(1, 2), realisms=(0.0, 0.5, 1.0)
) -> list[dict]:
    """Mean PSNR of the decoded images per quality and realism (NumPy runtime)."""
    from gancomp.coding.container import unpack
    from gancomp.evaluation.metrics import psnr
    from gancomp.runtime.codec import Codec

    codec = Codec.from_path(folder)
    rgb = [np.ascontiguousarray(im[..., :3]) for im in images]
    rows = []
    for q in qualities:
        parsed = [unpack(b) for b in codec.compress_arrays(rgb, q)]
        for r in realisms:
            decoded = codec.decode_payloads(parsed, realism=r)
            values = [psnr(a, d.rgb) for a, d in zip(rgb, decoded)]
            rows.append({"quality": q, "realism": r, "psnr": float(np.mean(values))})
    return rows
