"""Training: rate-distortion warm-up, then adversarial fine-tuning (HiFiC style).

Loss per sample at quality level l (drawn uniformly per sample):

    rate_bpp + lambda_l * MSE_255 [+ beta * non-saturating G loss]

The first ``rd_steps`` train E, G, gains and the densities on rate-distortion
only (``--init-from`` a folder without ``density.npz``: after a density warm-up, see
``TrainSettings.density_warmup_steps``); after that the latent-conditioned
discriminator and the generator are updated in alternating steps. Checkpoints
(weights, optimizer state, step) are plain ``.npz`` files written atomically, so
``--resume`` continues exactly and an interrupted run loses at most
``checkpoint_every`` steps.

Speed options (none changes a checkpoint's or a model folder's format):
``precision="mixed_bfloat16"`` (see :mod:`gancomp.training.model`), ``jit`` (XLA-compiled
steps), ``cache_dir`` (the patch cache of :mod:`gancomp.training.data`) and the
TensorFlow thread pools (``intra_op_threads``, ``inter_op_threads``; TensorFlow's
default is one thread per core for each).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gancomp.errors import GancompError, InputError, Interrupted
from gancomp.training import deepen, revive, widen
from gancomp.training import realism as realism_mod
from gancomp.training._tf import tf as _import_tf

DEFAULT_STEPS = 20000
DEFAULT_BETA = 0.01
DEFAULT_DISC_LR = 1e-4
#: The trainable densities of a model folder (outside the fingerprint, unused by the
#: runtime): ``--init-from`` starts its densities from them.
DENSITY_FILE = "density.npz"
#: Steps of the density warm-up when ``--init-from``'s densities start fresh: at most this
#: many, and a tenth of a short run (the transforms must keep most of it). Measured on the
#: shipped automobile model (batch 16, lr 7e-4, 128 validation images at 8 levels): the
#: fresh densities' estimate was 3.85x the bits its frozen tables code at step 0, 1.13x
#: after 50 warm-up steps, 1.02x after 100, 1.011x after 300, 1.008x after 400 (the coded
#: bits include the range coder's flush): past 300 steps there is little left to gain.
DENSITY_WARMUP_MAX = 300


def density_warmup_default(steps: int) -> int:
    return min(DENSITY_WARMUP_MAX, steps // 10)


@dataclass
class TrainSettings:
    category: str
    data: str
    output: str
    val_data: str | None = None
    cifar_class: str | None = None
    steps: int | None = None  # default: DEFAULT_STEPS (a resumed run keeps its own)
    batch_size: int | None = None  # default: 32 (a resumed run keeps its own)
    patch_size: int | None = None  # default: 32 for CIFAR-size data, else 128
    rd_steps: int | None = None  # default: 80% of steps
    beta: float | None = None  # default: DEFAULT_BETA (a resumed run keeps its own)
    lambdas: tuple[float, ...] | None = None
    lr: float = 5e-4
    density_lr_factor: float = 10.0
    clipnorm: float = 1.0
    disc_lr: float | None = None  # default 1e-4; the realism phase: REALISM_DISC_LR
    channels: int | None = None
    # G's residual blocks (default 1); with --init-from, more than the source's deepens it.
    residual_blocks: int | None = None
    latent_channels: int | None = None
    # With --init-from: dead latent channels restart (gancomp.training.revive).
    revive_latents: bool = False
    num_down: int | None = None
    hyper_channels: int | None = None  # default 128; a new hyperprior only
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    log_dir: str | None = None
    resume: bool = False
    init_from: str | None = None  # an exported model folder whose E, G and gains start the run
    entropy_model: str | None = (
        None  # "factorized" / "hyperprior"; default: the source's, else factorized
    )
    # Train only the hyperprior (h_a, h_s, the z density): E, G and the gains stay as loaded.
    freeze_transforms: bool = False
    # With --init-from a folder without density.npz: the first steps train only the densities
    # (everything else frozen), so E and the gains get no rate gradients of a random density.
    # None: density_warmup_default(steps); 0 when the densities are loaded.
    density_warmup_steps: int | None = None
    # Train only realism branches of --init-from's generator (gancomp.training.realism).
    realism_phase: bool = False
    realism_branches: int | None = None  # default 2 (at most num_down)
    feature_matching: float = 1.0  # weight of the discriminator's feature matching
    texture: float = 1.0  # weight of the realism phase's texture-energy term
    # Realism phase: adversarial weight of the unconditional whole-image critic (0: none).
    whole_image: float = 0.0
    # Realism phase: one more branch, in pixel space after the generator's RGB output.
    realism_pixel_branch: bool = False
    # Realism phase: planes of position noise the pixel branch reads (0: none).
    realism_noise: int = 0
    # Realism phase: weight each example's discriminator loss by 2r (default: all r alike).
    disc_weight_by_realism: bool = False
    # Realism phase: weight gamma of the discriminators' R1 penalty (0: none).
    r1: float = 0.0
    # Realism phase: decay of the moving average of the trained weights that is exported
    # (0: the last step's weights; None: a resumed run's own, else 0).
    realism_ema: float | None = None
    # Realism phase: also write the add-on as it is every N steps, to OUTPUT.snapshots/step-N
    # (None: none), so that a run's exports can be compared and one chosen afterwards.
    snapshot_every: int | None = None
    realism_levels: int | None = None  # the realism phase trains on the lowest N levels
    # Realism phase: a model folder whose add-on's branches start this run's (warm start,
    # for a base model trained further; the add-on may be another model's).
    realism_from: str | None = None
    strategy: str = "default"
    val_limit: int = 100
    # Training images the exported factorized model's context tables are fitted on
    # (None: 1,000 small images or 150 photos; 0: no context tables, format version 1).
    context_images: int | None = None
    progress: bool = True
    # "float32" or "mixed_bfloat16"; default: a resumed run's own, else float32.
    precision: str | None = None
    jit: bool = False  # XLA-compile the training steps
    onednn: bool = False  # oneDNN kernels in float32 too (bfloat16 always uses them)
    cache_dir: str | None = None  # patch cache folder (decode the images once)
    intra_op_threads: int | None = None  # TensorFlow's thread pools; None: its default
    inter_op_threads: int | None = None
    extra: dict = field(default_factory=dict)


def _strategy(name: str):
    tf = _import_tf()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise InputError("--strategy multi-worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise InputError(f"unknown strategy {name!r}")


def _is_chief(strategy) -> bool:
    """Whether this process writes the checkpoints, the model folder and TensorBoard logs:
    the chief of a multi-worker cluster (the "chief" task, else worker 0) and every
    single-process run. The others only compute their share of each step."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def _set_threads(intra: int | None, inter: int | None) -> None:
    """Size TensorFlow's thread pools; they exist from its first operation on, so a second
    run in the same process can only keep the sizes the first one chose."""
    tf = _import_tf()
    threading = tf.config.threading
    for value, get, put, option in (
        (
            intra,
            threading.get_intra_op_parallelism_threads,
            threading.set_intra_op_parallelism_threads,
            "--intra-op-threads",
        ),
        (
            inter,
            threading.get_inter_op_parallelism_threads,
            threading.set_inter_op_parallelism_threads,
            "--inter-op-threads",
        ),
    ):
        if value is None or get() == value:
            continue
        try:
            put(value)
        except RuntimeError:
            raise GancompError(
                f"{option} {value}: TensorFlow has already started in this process "
                f"with {get() or 'its default'}"
            ) from None


def _saved_settings(s: TrainSettings) -> dict:
    """A resumed run's train.json ({} when there is none to resume)."""
    path = Path(s.output).with_name(Path(s.output).name + ".ckpt") / "train.json"
    if not s.resume or not path.exists():
        return {}
    return json.loads(path.read_text())


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


class Trainer:
    def __init__(self, s: TrainSettings):
        self.s = s
        self._widening = False  # --init-from with a larger --channels
        self._source_latent = None  # --init-from with more --latent-channels: the source's
        self._source_blocks = None  # --init-from with more --residual-blocks: the source's
        if s.precision is None:
            # A resumed run keeps its precision unless --precision says otherwise.
            s.precision = _saved_settings(s).get("precision", "float32")
        # First: without the train extra this is the one-line "pip install" error, before
        # anything else can fail on a missing TensorFlow or Keras.
        mixed = s.precision == "mixed_bfloat16"
        tf = _import_tf(onednn=mixed or s.onednn)
        from gancomp.runtime.models import check_category_name
        from gancomp.training import data as data_mod
        from gancomp.training._tf import onednn_enabled
        from gancomp.training.model import PRECISIONS, GANModel, ModelConfig

        if s.precision not in PRECISIONS:
            raise InputError(f"unknown precision {s.precision!r} (known: {', '.join(PRECISIONS)})")
        _set_threads(s.intra_op_threads, s.inter_op_threads)
        self.onednn = onednn_enabled()
        if mixed and not self.onednn:
            print(
                "gancomp: warning: TensorFlow was imported without oneDNN before this run: "
                "its bfloat16 kernels are emulated and slow",
                file=sys.stderr,
                flush=True,
            )

        check_category_name(s.category)
        self.out = Path(s.output)
        self.ckpt_dir = self.out.with_name(self.out.name + ".ckpt")
        self.ckpt_path = self.ckpt_dir / "checkpoint.npz"
        if s.resume and s.init_from:
            raise InputError("--init-from starts a new run: it cannot be combined with --resume")
        if s.resume and not self.ckpt_path.exists():
            raise InputError(f"--resume: no checkpoint at {self.ckpt_path}")
        if s.realism_phase and not (s.init_from or s.resume):
            raise InputError("--realism-phase trains on a trained model: give --init-from MODEL")
        if s.realism_from and not (s.realism_phase and s.init_from):
            raise InputError("--realism-from starts a new --realism-phase run with --init-from")
        for flag, given in (
            ("--disc-weight-by-realism", s.disc_weight_by_realism),
            ("--r1", s.r1),
            ("--realism-ema", s.realism_ema),
        ):
            if given and not (s.realism_phase or s.resume):
                raise InputError(f"{flag} belongs to --realism-phase")
        if s.realism_noise and not (s.resume or (s.realism_phase and s.realism_pixel_branch)):
            raise InputError("--realism-noise needs --realism-phase --realism-pixel-branch")
        if not s.resume and self.ckpt_path.exists():
            raise GancompError(
                f"{self.ckpt_dir} holds a checkpoint: pass --resume to continue it, "
                "or choose another --output"
            )
        if not s.resume and self.out.exists():
            raise GancompError(f"output {self.out} exists: choose another --output")

        # Data first: a bad folder is an error before any model is built.
        def load(folder):
            cls = s.cifar_class or s.category
            if s.cache_dir:
                return data_mod.load_cached(folder, cls, s.cache_dir)
            return data_mod.load_folder(folder, cls)

        self.train_set = load(s.data)
        self.val_set = load(s.val_data) if s.val_data else None
        small = max(max(a.shape[:2]) for a in self.train_set.images[:200]) <= 64
        self.small_images = small  # also picks the default --context-images
        patch = s.patch_size or (32 if small else 128)
        self.patch = patch

        if s.resume:
            cfg_dict = json.loads((self.ckpt_dir / "config.json").read_text())
            self.cfg = ModelConfig.from_dict(cfg_dict)
            # A run's architecture is fixed: an option that would change it is an error,
            # not silently ignored.
            for flag, given, have in (
                ("--channels", s.channels, self.cfg.channels),
                ("--latent-channels", s.latent_channels, self.cfg.latent_channels),
                ("--residual-blocks", s.residual_blocks, self.cfg.residual_blocks),
                ("--entropy-model", s.entropy_model, self.cfg.entropy_model),
            ):
                if given and given != have:
                    raise InputError(
                        f"{flag} {given}: the checkpoint's model has {have}, and --resume "
                        "continues it as it is (--init-from an exported model changes it)"
                    )
            saved = json.loads((self.ckpt_dir / "train.json").read_text())
            # The run's settings carry over; an explicit --steps, --rd-steps, --beta,
            # --batch-size or --realism-ema overrides them (e.g. a beta = 0 branch of a run
            # from its end-of-warm-up checkpoint).
            overridable = ("steps", "rd_steps", "beta", "batch_size", "realism_ema")
            # A rate-distortion-only run extended by --steps stays one: without this its
            # new steps past the old rd_steps would silently become an adversarial phase.
            extends_rd_only = (
                s.steps is not None
                and s.rd_steps is None
                and not saved.get("realism_phase")
                and saved.get("rd_steps", 0) >= saved.get("steps", 1)
            )
            for k in (
                "lr",
                "disc_lr",
                "seed",
                "density_lr_factor",
                "clipnorm",
                "freeze_transforms",
                *realism_mod.SETTINGS,
                *overridable,
            ):
                if k in saved and not (k in overridable and getattr(s, k) is not None):
                    setattr(s, k, saved[k])
            if extends_rd_only:
                s.rd_steps = s.steps
            # A checkpoint written before the warm-up existed had none.
            s.density_warmup_steps = saved.get("density_warmup_steps", 0)
            # Without --patch-size the run keeps its own patch (checkpoints written before
            # it was saved fall back to the default).
            if s.patch_size is None and saved.get("patch_size"):
                patch = self.patch = int(saved["patch_size"])
            if s.lambdas:
                # Re-targeting the levels of a trained model: the per-level gains adapt,
                # so fine-tuning with new distortion weights is much cheaper than a retrain.
                lambdas = tuple(float(v) for v in s.lambdas)
                if len(lambdas) != self.cfg.levels:
                    raise InputError(
                        f"--lambdas gives {len(lambdas)} values but the checkpoint has "
                        f"{self.cfg.levels} levels"
                    )
                self.cfg = dataclasses.replace(self.cfg, lambdas=lambdas)
        elif s.init_from:
            from gancomp.runtime.models import read_model_folder

            src = read_model_folder(s.init_from)
            cfg_dict = {**src.config, "category": s.category}
            if s.entropy_model:
                cfg_dict["entropy_model"] = s.entropy_model
            if cfg_dict.get("entropy_model") == "hyperprior" and (
                src.config.get("entropy_model", "factorized") != "hyperprior"
            ):
                # E and G of a factorized model start a hyperprior one: h_a and h_s start
                # fresh, with this version's hyperprior settings (not the defaults that
                # from_dict gives folders exported before a setting existed).
                fresh = ModelConfig(category=s.category)
                cfg_dict["index_bias_scale"] = fresh.index_bias_scale
                cfg_dict["hyper_channels"] = s.hyper_channels or fresh.hyper_channels
            if s.lambdas:
                cfg_dict["lambdas"] = [float(v) for v in s.lambdas]
                cfg_dict["levels"] = len(cfg_dict["lambdas"])
            source_channels = int(cfg_dict.get("channels", 96))
            if s.channels and s.channels != source_channels:
                # A wider model that starts as the source (gancomp.training.widen).
                if s.channels < source_channels:
                    raise InputError(
                        f"--channels {s.channels}: {s.init_from} has {source_channels} "
                        "channels, and --init-from can widen a model, not narrow it"
                    )
                if s.realism_phase:
                    raise InputError(
                        "--realism-phase trains an add-on of the model as it is: "
                        "it cannot change --channels"
                    )
                cfg_dict["channels"] = s.channels
                self._widening = True
            source_blocks = int(cfg_dict.get("residual_blocks", 1))
            if s.residual_blocks and s.residual_blocks != source_blocks:
                # A deeper generator that starts as the source (gancomp.training.deepen).
                if s.residual_blocks < source_blocks:
                    raise InputError(
                        f"--residual-blocks {s.residual_blocks}: {s.init_from} has "
                        f"{source_blocks} residual blocks, and --init-from can deepen a model, "
                        "not make it shallower"
                    )
                if s.realism_phase:
                    raise InputError(
                        "--realism-phase trains an add-on of the model as it is: "
                        "it cannot change --residual-blocks"
                    )
                cfg_dict["residual_blocks"] = s.residual_blocks
                self._source_blocks = source_blocks
            source_latent = int(cfg_dict.get("latent_channels", 128))
            if s.latent_channels and s.latent_channels != source_latent:
                # A wider latent whose new channels start as revived ones (gancomp.training.widen).
                if s.latent_channels < source_latent:
                    raise InputError(
                        f"--latent-channels {s.latent_channels}: {s.init_from} has "
                        f"{source_latent}, and --init-from can widen a latent, not narrow it"
                    )
                if s.realism_phase or cfg_dict.get("entropy_model", "factorized") != "factorized":
                    raise InputError(
                        "--latent-channels with --init-from widens a factorized model's latent: "
                        "not with a hyperprior or --realism-phase"
                    )
                cfg_dict["latent_channels"] = s.latent_channels
                self._source_latent = source_latent
            self.cfg = ModelConfig.from_dict(cfg_dict)
            self._init_weights = src.weights
            self._init_entropy_model = src.config.get("entropy_model", "factorized")
            if s.realism_phase:
                realism_mod.check_source(s, src)
                self.realism_base = realism_mod.base_from_folder(src)
        else:
            kw = {
                "category": s.category,
                "num_down": s.num_down or (3 if small else 4),
                "channels": s.channels or 96,
                "residual_blocks": s.residual_blocks or 1,
                "latent_channels": s.latent_channels or 128,
            }
            if s.entropy_model:
                kw["entropy_model"] = s.entropy_model
            if s.hyper_channels:
                kw["hyper_channels"] = s.hyper_channels
            kw.update(s.extra.get("config", {}))
            if s.lambdas:
                kw["lambdas"] = tuple(float(v) for v in s.lambdas)
                kw["levels"] = len(kw["lambdas"])
            self.cfg = ModelConfig(**kw)
        if patch % self.cfg.total_stride:
            raise InputError(
                f"--patch-size {patch} must be a multiple of the stride {self.cfg.total_stride}"
            )
        if s.realism_phase:
            s.realism_branches = realism_mod.branch_count(s, self.cfg)
            realism_mod.check_levels(s, self.cfg)
            if s.resume:
                self.realism_base = realism_mod.load_base(self.ckpt_dir)
        if s.beta is None:
            s.beta = realism_mod.REALISM_BETA if s.realism_phase else DEFAULT_BETA
        if s.realism_ema is None:
            s.realism_ema = 0.0
        if s.snapshot_every and not s.realism_phase:
            raise InputError("--snapshot-every belongs to --realism-phase")
        if s.disc_lr is None:
            s.disc_lr = realism_mod.REALISM_DISC_LR if s.realism_phase else DEFAULT_DISC_LR
        if s.batch_size is None:
            s.batch_size = 32
        if s.steps is None:
            s.steps = DEFAULT_STEPS
        if s.rd_steps is None:
            s.rd_steps = int(0.8 * s.steps)

        tf.random.set_seed(s.seed)
        self.strategy = _strategy(s.strategy)
        replicas = self.strategy.num_replicas_in_sync
        if s.batch_size % replicas:
            raise InputError(f"--batch-size {s.batch_size} must divide by {replicas} replicas")
        import keras

        with self.strategy.scope():
            self.model = GANModel(
                self.cfg,
                precision=s.precision,
                realism_branches=s.realism_branches if s.realism_phase else 0,
                whole_image_critic=s.realism_phase and s.whole_image > 0,
                realism_pixel_branch=s.realism_phase and s.realism_pixel_branch,
                realism_noise=s.realism_noise if s.realism_phase else 0,
                name="gancodec",
            )
            self.model.build_all()
            # No loss scaling under mixed_bfloat16: bfloat16 has float32's exponent range,
            # so gradients do not underflow as they would in float16; the gradients and the
            # optimizer states are float32 as the variables are.
            self.opt_g = keras.optimizers.Adam(learning_rate=s.lr, global_clipnorm=s.clipnorm)
            # The densities start far wider than the latents they must fit; a faster
            # optimizer of their own lets the rate term follow the transforms.
            self.opt_p = keras.optimizers.Adam(learning_rate=s.lr * s.density_lr_factor)
            self.opt_d = keras.optimizers.Adam(learning_rate=s.disc_lr, beta_1=0.5)
            if s.freeze_transforms and not self.model.hyperprior:
                raise InputError("--freeze-transforms trains a hyperprior: the model has none")
            self.g_vars = (
                self.model.hyperprior_weights()
                if s.freeze_transforms
                else self.model.transform_weights()
            )
            self.p_vars = self.model.density.trainable_weights
            if s.realism_phase:  # everything but the branches (and D) frozen
                self.g_vars, self.p_vars = realism_mod.trained_weights(self.model, s), []
            self.d_vars = self.model.discriminator.trainable_weights
            self.opt_g.build(self.g_vars)
            self.opt_p.build(self.p_vars)
            self.opt_d.build(self.d_vars)
            self.ema_vars = realism_mod.ema_variables(self.g_vars) if s.realism_ema else []
            self.lambdas = tf.constant(self.cfg.lambdas, tf.float32)
        self.step = 0
        if s.revive_latents and not s.init_from:
            raise InputError("--revive-latents revives the latents of an --init-from model")
        if s.init_from:
            restarts = s.revive_latents or self._source_latent is not None
            fresh = revive.fresh_values(self.model) if restarts else {}
            loaded = self._load_init_weights()
            if restarts:
                self._revive_latents(fresh)
            self._set_density_warmup(loaded)
            if s.realism_from:
                realism_mod.load_branches(self.model, s.realism_from)
        elif not s.resume:
            s.density_warmup_steps = 0  # every weight starts fresh: nothing to protect
        # A cached run's patch stream is seeded with the step it starts at (see PatchSampler).
        start = 0
        if s.resume:
            with np.load(self.ckpt_path) as z:
                start = int(z["step"])
        ds = data_mod.make_dataset(self.train_set, patch, s.batch_size, s.seed, start=start)
        self.dist_ds = iter(self.strategy.experimental_distribute_dataset(ds))
        self._build_steps()

    def _revive_latents(self, fresh: dict[str, np.ndarray]) -> None:
        s = self.s
        if self.model.hyperprior or s.realism_phase or s.freeze_transforms:
            raise InputError(
                "--revive-latents trains a factorized model's transforms: not with a "
                "hyperprior, --realism-phase or --freeze-transforms"
            )
        m = self.cfg.latent_channels
        old_m = self._source_latent or m
        dead = revive.dead_channels(self.model)
        dead = dead[dead < old_m]  # the new channels' fresh densities are wide
        if old_m < m:  # a wider latent: its new channels, and the dead ones if asked
            new = np.arange(old_m, m)
            channels = np.concatenate([dead, new]) if s.revive_latents else new
            revive.revive(
                self.model,
                fresh,
                channels,
                read_scale=widen.LATENT_READ_SCALE,
                gains_from=np.setdiff1d(np.arange(old_m), dead),
                match_filter_norms=True,
            )
            print(
                f"latent widened from {old_m} to {m} channels"
                + (f", {len(dead)} dead ones revived" if s.revive_latents else ""),
                file=sys.stderr,
            )
        else:
            channels = dead
            revive.revive(self.model, fresh, channels)
            print(
                f"revived {len(dead)} of {m} latent channels "
                f"(dead at level {self.cfg.levels}: P(0) >= {revive.DEAD_P0})",
                file=sys.stderr,
            )
        self.revived_channels = [int(c) for c in channels]

    def _load_init_weights(self) -> set[str]:
        """E, G and gains must all be in the source (but G's new residual blocks, which start
        as the identity: gancomp.training.deepen); the hyperprior's layers are taken when
        there (a hyperprior source) and start fresh otherwise (a factorized source); the
        densities are taken from the source's density.npz when it has this model's
        (:meth:`_load_init_density`). Returns the paths of the variables loaded."""
        import io

        model = self.model
        with np.load(io.BytesIO(self._init_weights)) as z:
            stored = {k: z[k] for k in z.files}
        # New: realism branches start fresh, new residual blocks as the identity.
        new = {v.path for v in realism_mod.branch_weights(model)}
        if self._source_blocks is not None:
            new |= {v.path for v in deepen.new_block_weights(model, self._source_blocks)}
        targets = {v.path: v for v in inference_weights_vars(model) if v.path not in new}
        # The z gain when the source has one; else it starts at gain 1, as such folders code.
        targets.update({v.path: v for v in model.z_gain_weights() if v.path in stored})
        integer_layers = list(model.h_s_scale.sublayers) if model.hyperprior else []
        if model.hyperprior and "gancodec/h_a/conv0/kernel" not in stored:
            hyper = tuple(architecture_prefixes_of_hyperprior())
            targets = {k: v for k, v in targets.items() if not k.startswith(hyper)}
            integer_layers = []
        missing = sorted(set(targets) - set(stored))
        if missing:
            raise InputError(
                f"--init-from {self.s.init_from}: the model lacks {len(missing)} weights "
                f"of this architecture (first: {missing[0]})"
            )
        roles = widen.weight_roles(model) if self._widening or self._source_latent else {}
        if self._source_latent:  # new gain columns: set when the new channels start
            roles.update({v.path: "vector" for v in (model.log_gain, model.log_inv_gain)})
        for name, v in targets.items():
            if tuple(stored[name].shape) != tuple(v.shape):
                try:
                    stored[name] = widen.embed(roles[name], stored[name], v.numpy())
                except (KeyError, ValueError):
                    raise InputError(
                        f"--init-from {self.s.init_from}: weight {name} has shape "
                        f"{stored[name].shape}, this architecture needs {tuple(v.shape)}"
                    ) from None
            v.assign(stored[name])
        if self._source_blocks is not None:
            deepen.start_as_identity(model, self._source_blocks)
        loaded = set(targets)
        for layer in integer_layers:
            base = layer.kernel.path.rsplit("/", 1)[0]
            layer.load_integers(stored[f"{base}/kernel_int"], stored[f"{base}/bias_int"])
            loaded.update(w.path for w in layer.trainable_weights)
        return loaded | self._load_init_density()

    def _load_init_density(self) -> set[str]:
        """The source's densities (density.npz) when they are this model's: the same entropy
        model (a factorized source's y density is no hyperprior's z density). Returns the paths
        loaded: none when the source has no density.npz (exported before it existed) or
        another entropy model; a density.npz that does not fit is an InputError."""
        import zipfile

        path = Path(self.s.init_from) / DENSITY_FILE
        source_entropy = self._init_entropy_model
        if not path.is_file() or source_entropy != self.cfg.entropy_model:
            self._fresh_density_reason = (
                f"{self.s.init_from} has no {DENSITY_FILE}"
                if not path.is_file()
                else f"the {source_entropy} source's density is not this model's"
            )
            return set()
        where = f"--init-from {self.s.init_from}: {DENSITY_FILE}"
        try:
            with np.load(path) as z:
                stored = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{where} is unreadable ({exc})") from None
        targets = {v.path: v for v in self.model.density.trainable_weights}
        missing = sorted(set(targets) - set(stored))
        if missing:
            raise InputError(f"{where} lacks {len(missing)} densities (first: {missing[0]})")
        if self._source_latent:  # a wider latent: the new channels' rows stay fresh
            for name, v in targets.items():
                try:
                    stored[name] = widen.embed_latent_rows(stored[name], v.numpy(), self.cfg.levels)
                except ValueError as exc:
                    raise InputError(f"{where}: {name}: {exc}") from None
        assign_checked(targets, stored, where)
        return set(targets)

    def _set_density_warmup(self, loaded: set[str]) -> None:
        """Densities that start fresh train alone first, unless nothing loaded is trained
        (the realism phase trains neither; --freeze-transforms on a factorized source trains
        only a fresh hyperprior)."""
        s = self.s
        fresh = [v for v in self.model.density.trainable_weights if v.path not in loaded]
        protect = any(v.path in loaded for v in self.g_vars)
        if not fresh or s.realism_phase or not protect:
            s.density_warmup_steps = 0
            return
        if s.density_warmup_steps is None:
            s.density_warmup_steps = density_warmup_default(s.steps)
        if s.density_warmup_steps < 0:
            raise InputError(f"density warm-up steps must be >= 0, got {s.density_warmup_steps}")
        warmup = s.density_warmup_steps
        alone = f" and train alone for the first {warmup} steps" if warmup else ""
        print(
            f"gancomp: note: {self._fresh_density_reason}: the entropy model's densities "
            f"start fresh{alone}",
            file=sys.stderr,
            flush=True,
        )

    # -- the two compiled steps -------------------------------------------------
    def _build_steps(self) -> None:
        tf = _import_tf()
        model, s = self.model, self.s
        gb = s.batch_size
        levels_n = self.cfg.levels

        def rd_terms(x, out, levels, frozen_generator):
            px = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
            bits = tf.add_n(
                [
                    -tf.reduce_sum(tf.math.log(lik), axis=[1, 2, 3]) / math.log(2)
                    for lik in out["likelihoods"].values()
                ]
            )
            bpp = bits / px
            x_hat = out["x_hat"]
            if frozen_generator:
                # Nothing trained can change it (y_hat = y + rounding whatever the mean), so
                # no backward pass through the generator.
                x_hat = tf.stop_gradient(x_hat)
            mse = tf.reduce_mean(tf.square((x_hat - x) * 255.0), axis=[1, 2, 3])
            return bpp, mse, tf.gather(self.lambdas, levels)

        def d_update(x, x_hat, cond):
            with tf.GradientTape() as tape:
                real = model.discriminator(x, cond)
                fake = model.discriminator(x_hat, cond)
                d_loss = tf.reduce_mean(tf.nn.softplus(-real), 1) + tf.reduce_mean(
                    tf.nn.softplus(fake), 1
                )
                loss = tf.nn.compute_average_loss(d_loss, global_batch_size=gb)
            grads = tape.gradient(loss, self.d_vars)
            self.opt_d.apply_gradients(zip(grads, self.d_vars))
            return d_loss

        def step_fn(x, gan, warmup):
            # The rate-distortion phase (gan False) traces no discriminator op at all; the
            # density warm-up trains the densities only.
            g_vars = [] if warmup else self.g_vars
            b = tf.shape(x)[0]
            levels = tf.random.uniform([b], 0, levels_n, tf.int32)
            d_loss = tf.zeros([b])
            with tf.GradientTape() as tape:
                out = model(x, levels, training=True)
                bpp, mse, lam = rd_terms(x, out, levels, s.freeze_transforms or warmup)
                per = bpp + lam * mse
                g_adv = tf.zeros([b])
                if gan:
                    # D first learns from this very forward pass (one pass of E and G per
                    # step, not two), then judges it for G's loss with its new weights.
                    cond = tf.stop_gradient(out["latent"])
                    with tape.stop_recording():
                        d_loss = d_update(x, tf.stop_gradient(out["x_hat"]), cond)
                    fake = model.discriminator(out["x_hat"], cond)
                    g_adv = tf.reduce_mean(tf.nn.softplus(-fake), 1)
                    per = per + s.beta * g_adv
                loss = tf.nn.compute_average_loss(per, global_batch_size=gb)
            grads = tape.gradient(loss, g_vars + self.p_vars)
            n_g = len(g_vars)
            if g_vars:
                self.opt_g.apply_gradients(zip(grads[:n_g], g_vars))
            self.opt_p.apply_gradients(zip(grads[n_g:], self.p_vars))
            psnr = 10.0 * tf.math.log(255.0**2 / tf.maximum(mse, 1e-10)) / math.log(10.0)

            def mean(v):
                return tf.nn.compute_average_loss(v, global_batch_size=gb)

            return {
                "loss": loss,
                "bpp": mean(bpp),
                "psnr": mean(psnr),
                "d_loss": mean(d_loss),
                "g_adv": mean(g_adv),
            }

        def make(gan, warmup=False):
            # XLA compiles the replica's step; the iterator stays outside it.
            def replica_fn(x):
                return step_fn(x, gan, warmup)

            replica_step = tf.function(replica_fn, jit_compile=True) if s.jit else replica_fn

            @tf.function
            def run(it):
                x = next(it)
                res = self.strategy.run(replica_step, args=(x,))
                return {
                    k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in res.items()
                }

            return run

        self._rd_step = make(False)
        self._gan_step = make(True)
        self._warmup_step = make(False, warmup=True)
        if s.realism_phase:
            self._rd_step = self._gan_step = realism_mod.build_step(self)

    def _optimizers(self):
        return (("og", self.opt_g), ("op", self.opt_p), ("od", self.opt_d))

    # -- checkpoints ------------------------------------------------------------
    @property
    def is_chief(self) -> bool:
        return _is_chief(self.strategy)

    def _state(self) -> dict[str, np.ndarray]:
        st = {f"m/{v.path}": np.asarray(v.numpy()) for v in self.model.weights}
        for name, opt in self._optimizers():
            for i, v in enumerate(opt.variables):
                st[f"{name}/{i}"] = np.asarray(v.numpy())
        for i, v in enumerate(self.ema_vars):
            st[f"ema/{i}"] = np.asarray(v.numpy())
        st["step"] = np.array(self.step, np.int64)
        return st

    def save_checkpoint(self) -> None:
        if not self.is_chief:
            # Every worker holds the same weights; one copy, the chief's, is enough.
            return
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        (self.ckpt_dir / "config.json").write_text(self.cfg.to_json())
        keep = (
            "rd_steps",
            "beta",
            "lr",
            "disc_lr",
            "seed",
            "steps",
            "batch_size",
            "density_lr_factor",
            "clipnorm",
            "precision",
            "freeze_transforms",
            "density_warmup_steps",
            *realism_mod.SETTINGS,
        )
        settings = {k: getattr(self.s, k) for k in keep}
        settings["patch_size"] = self.patch  # the one used, also when it was the default
        (self.ckpt_dir / "train.json").write_text(json.dumps(settings, indent=2))
        if self.s.realism_phase:
            realism_mod.save_base(self.ckpt_dir, self.realism_base)
        _atomic_savez(self.ckpt_path, self._state())

    def load_checkpoint(self) -> None:
        with np.load(self.ckpt_path) as z:
            # A checkpoint written before the z gain existed has neither it (it stays at
            # gain 1) nor its optimizer slots (named after its path).
            new = [v.path for v in self.model.z_gain_weights() if f"m/{v.path}" not in z]
            slots = tuple(path.replace("/", "_") + "_" for path in new)
            for v in self.model.weights:
                if v.path not in new:
                    v.assign(z[f"m/{v.path}"])
            for name, opt in self._optimizers():
                kept = [v for v in opt.variables if not v.name.startswith(slots)]
                for i, v in enumerate(kept):
                    v.assign(z[f"{name}/{i}"])
            # A checkpoint without the average (--realism-ema added on --resume) starts it
            # at the weights it holds (the update count stays 0).
            if all(f"ema/{i}" in z for i in range(len(self.ema_vars))):
                for i, v in enumerate(self.ema_vars):
                    v.assign(z[f"ema/{i}"])
            self.step = int(z["step"])

    # -- main loop --------------------------------------------------------------
    def _lr_at(self, step: int) -> float:
        # Constant, then one 10x drop for the last 10% of the run.
        s = self.s
        return s.lr * (0.1 if step >= int(0.9 * s.steps) else 1.0)

    def run(self) -> dict:
        tf = _import_tf()
        from tqdm import tqdm

        s = self.s
        if s.resume:
            self.load_checkpoint()
        writer = tf.summary.create_file_writer(s.log_dir) if s.log_dir and self.is_chief else None
        start_step, t0 = self.step, time.time()
        bar = tqdm(
            total=s.steps,
            initial=self.step,
            disable=not s.progress,
            unit="step",
            dynamic_ncols=True,
        )
        interrupted = False
        prev = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        stats: dict[str, float] = {}
        current_lr = None
        try:
            while self.step < s.steps:
                lr = self._lr_at(self.step)
                if lr != current_lr:
                    self.opt_g.learning_rate = current_lr = lr
                warmup = self.step < s.density_warmup_steps
                gan = (
                    not warmup
                    and self.step >= s.rd_steps
                    and s.beta > 0
                    and not s.freeze_transforms
                )
                step = self._warmup_step if warmup else self._gan_step if gan else self._rd_step
                res = step(self.dist_ds)
                self.step += 1
                bar.update(1)
                if self.step % s.log_every == 0 or self.step == s.steps:
                    stats = {k: float(v) for k, v in res.items()}
                    if not all(math.isfinite(v) for v in stats.values()):
                        bar.close()
                        raise GancompError(
                            f"non-finite loss at step {self.step}; stopped. The last good "
                            f"checkpoint is kept in {self.ckpt_dir} (--resume to retry)"
                        )
                    bar.set_postfix(
                        **({"bpp": f"{stats['bpp']:.3f}"} if "bpp" in stats else {}),
                        psnr=f"{stats['psnr']:.2f}",
                        d=f"{stats['d_loss']:.3f}",
                        g=f"{stats['g_adv']:.3f}",
                    )
                    if not s.progress:
                        # A log file gets a plain line now and then instead of a bar.
                        rate = (self.step - start_step) / max(time.time() - t0, 1e-9)
                        bpp = f" bpp {stats['bpp']:.4f}" if "bpp" in stats else ""
                        print(
                            f"step {self.step}/{s.steps}{bpp} "
                            f"psnr {stats['psnr']:.2f} d {stats['d_loss']:.3f} "
                            f"g {stats['g_adv']:.3f}{_realism_stats(stats)} "
                            f"({rate:.2f} steps/s)",
                            file=sys.stderr,
                            flush=True,
                        )
                    if writer:
                        with writer.as_default(step=self.step):
                            for k, v in stats.items():
                                tf.summary.scalar(f"train/{k}", v)
                if self.step % s.checkpoint_every == 0:
                    self.save_checkpoint()
                    if writer and self.val_set is not None:
                        self._image_summary(writer)
                if s.snapshot_every and self.step % s.snapshot_every == 0 and self.is_chief:
                    realism_mod.write_snapshot(self, time.time() - t0, self.step - start_step)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            signal.signal(signal.SIGTERM, prev)
            bar.close()
        self.save_checkpoint()
        elapsed = time.time() - t0
        if interrupted:
            saved = (
                f"checkpoint saved in {self.ckpt_dir}"
                if self.is_chief
                else "the chief worker writes the checkpoints"
            )
            raise Interrupted(f"interrupted at step {self.step}; {saved} (continue with --resume)")
        return self.export(elapsed, self.step - start_step, stats, writer)

    def _image_summary(self, writer) -> None:
        tf = _import_tf()
        from gancomp.training.data import pad_to_patch

        imgs = self.val_set.images[:4]
        crops = np.stack([pad_to_patch(a[: self.patch, : self.patch], self.patch) for a in imgs])
        crops = crops.astype(np.float32) / 255
        x = tf.constant(crops)
        rows = []
        for lv in (0, self.cfg.levels - 1):
            out = self.model(x, tf.fill([len(imgs)], lv), training=False)
            rows.append(tf.clip_by_value(out["x_hat"], 0, 1))
        with writer.as_default(step=self.step):
            tf.summary.image("val/original", x, max_outputs=4)
            tf.summary.image("val/lowest_level", rows[0], max_outputs=4)
            tf.summary.image("val/highest_level", rows[1], max_outputs=4)

    def _with_context_tables(
        self, config_json: str, weights: dict[str, np.ndarray], tables: bytes
    ) -> tuple[bytes, dict | None]:
        """A factorized model's ``tables.npz`` with channel-context tables fitted on
        ``--context-images`` evenly spaced training images (format version 3: about 10%
        fewer bits for the same pixels), and the metadata note on them; unchanged (and no
        note) for a hyperprior or ``--context-images 0``."""
        if self.model.hyperprior or self.s.context_images == 0:
            return tables, None
        from gancomp.runtime import context_fit
        from gancomp.runtime.codec import Codec
        from gancomp.runtime.models import FILES, ModelFolder, fingerprint_of, weights_to_bytes

        files = dict(
            zip(FILES, (config_json.encode(), weights_to_bytes(weights), tables), strict=True)
        )
        fp = fingerprint_of(files)
        folder = ModelFolder(
            self.out, json.loads(config_json), files["weights.npz"], tables, {}, fp
        )
        images = self.train_set.images
        count = self.s.context_images or (
            context_fit.DEFAULT_IMAGES_SMALL
            if self.small_images
            else context_fit.DEFAULT_IMAGES_PHOTO
        )
        chosen = context_fit.evenly_spaced(images, count)
        fitted = context_fit.fit_for_images(Codec(folder), (np.asarray(a) for a in chosen))
        note = {"fitted_for": fp, "train_images": len(chosen), "buckets": fitted.buckets}
        return fitted.add_to_model_tables(tables), note

    def inference_weights(self) -> dict[str, np.ndarray]:
        return inference_weights(self.model)

    def export(self, elapsed: float, steps_run: int, stats: dict, writer=None) -> dict:
        from gancomp.runtime.models import write_model_files

        s = self.s
        if s.realism_phase:
            return realism_mod.export(self, elapsed, steps_run, stats)
        config_json, weights, tables = export_files(self.model)
        tables, context_note = self._with_context_tables(config_json, weights, tables)
        if not self.is_chief:
            # The chief writes the model; the fingerprint shows that this worker's is the same.
            from gancomp.runtime.models import fingerprint_of, weights_to_bytes

            files = {
                "config.json": config_json.encode(),
                "weights.npz": weights_to_bytes(weights),
                "tables.npz": tables,
            }
            return {
                "output": "the chief worker's --output",
                "fingerprint": fingerprint_of(files),
                "steps": self.step,
                "skipped": self.train_set.skipped,
            }
        meta = {
            "category": self.cfg.category,
            "training": {
                **{k: v for k, v in asdict(s).items() if k not in ("extra", "progress")},
                "patch_size": self.patch,
                "lambdas": list(self.cfg.lambdas),
                "train_images": len(self.train_set),
                "train_source": self.train_set.source,
                "skipped_files": len(self.train_set.skipped),
                "seconds_this_run": round(elapsed, 1),
                "steps_this_run": steps_run,
                "final_train_stats": stats,
                "onednn": self.onednn,
                "revived_channels": getattr(self, "revived_channels", None),
                "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            },
        }
        if context_note:
            meta["context_tables"] = context_note
        fp = write_model_files(
            self.out, model_files(self.model, config_json, weights, tables), meta, force=s.resume
        )
        result = {"output": str(self.out), "fingerprint": fp, "steps": self.step}
        if self.val_set is not None:
            from gancomp.evaluation.roundtrip import evaluate_model
            from gancomp.runtime.models import update_metadata

            table = evaluate_model(self.out, self.val_set.images[: s.val_limit])
            update_metadata(self.out, validation=table)
            result["validation"] = table
            if writer:
                with writer.as_default(step=self.step):
                    for row in table:
                        _import_tf().summary.scalar(f"val/psnr_q{row['quality']}", row["psnr"])
                        _import_tf().summary.scalar(f"val/bpp_q{row['quality']}", row["bpp"])
        result["skipped"] = self.train_set.skipped
        return result


def _realism_stats(stats: dict) -> str:
    """The realism phase's log fields: feature matching and the discriminator's accuracy."""
    if "d_acc_real" not in stats:
        return ""
    return (
        f" db {stats['db_cost']:.2f} fm {stats['fm']:.3f} tex {stats['tex']:.2f}"
        f" d_acc real {stats['d_acc_real']:.2f} fake {stats['d_acc_fake']:.2f}"
        + (f" whole {stats['whole_acc']:.2f}" if "whole_acc" in stats else "")
    )


def assign_checked(targets: dict, stored: dict[str, np.ndarray], where: str) -> None:
    """Give each variable of ``targets`` (path -> variable) its stored value, once every
    shape is checked: a mismatch is a one-line error naming ``where``, and nothing is
    assigned."""
    for name, v in targets.items():
        if tuple(stored[name].shape) != tuple(v.shape):
            raise InputError(
                f"{where}: {name} has shape {stored[name].shape}, this model needs {tuple(v.shape)}"
            )
    for name, v in targets.items():
        v.assign(stored[name].astype(np.float32))


def _raise_interrupt(*_args) -> None:
    # SIGTERM (e.g. a job scheduler) gets the same clean checkpoint as Ctrl-C.
    raise KeyboardInterrupt


def architecture_prefixes_of_hyperprior() -> list[str]:
    from gancomp.architecture import PREFIXES

    return [
        PREFIXES[t] + "/"
        for t in ("hyper_analysis", "hyper_synthesis_mean", "hyper_synthesis_scale")
    ]


def inference_weights_vars(model) -> list:
    """The float variables a model folder ships: E, G, the gain vectors and, with a
    hyperprior, h_a and h_s's mean branch (not D, not the densities; h_s's scale branch
    ships as integers, and a hyperprior's z gain, which a folder may lack: both are added
    by :func:`inference_weights`)."""
    vs = model.encoder.weights + model.generator.weights + [model.log_gain, model.log_inv_gain]
    if model.hyperprior:
        vs += model.h_a.weights + model.h_s_mean.weights
    return vs


def inference_weights(model) -> dict[str, np.ndarray]:
    shipped = inference_weights_vars(model) + model.z_gain_weights()
    weights = {v.path: np.asarray(v.numpy()) for v in shipped}
    if model.hyperprior:
        from gancomp.training.hyperprior import integer_layer_arrays

        for layer in model.h_s_scale.sublayers:
            weights.update(integer_layer_arrays(layer, layer.kernel.path.rsplit("/", 1)[0]))
    return weights


def export_files(model) -> tuple[str, dict[str, np.ndarray], bytes]:
    """config.json (with the architecture description), weights and tables.npz of a model."""
    from gancomp.coding import hyperprior_spec
    from gancomp.coding.entropy import build_tables, gaussian_scale_tables, pack_tables

    config = json.loads(model.cfg.to_json())
    config["architecture"] = model.architecture
    density_tables = build_tables(model.density)
    if model.hyperprior:
        scale_tables = gaussian_scale_tables(hyperprior_spec.scale_table())
        tables = pack_tables({"z": density_tables, "scale": scale_tables})
    else:
        tables = pack_tables({"": density_tables})
    return json.dumps(config, sort_keys=True, indent=2), inference_weights(model), tables


def density_arrays(model) -> dict[str, np.ndarray]:
    """The trainable variables of a model's density (the y density of a factorized model,
    the z density of a hyperprior), by variable path, float32: its ``density.npz``."""
    return {v.path: np.asarray(v.numpy(), np.float32) for v in model.density.trainable_weights}


def model_files(model, config_json: str, weights: dict, tables: bytes) -> dict[str, bytes]:
    """Every file of a model folder but metadata.json: the fingerprinted ones and
    ``density.npz`` (for ``--init-from``; not fingerprinted, not read by the runtime)."""
    from gancomp.runtime.models import weights_to_bytes

    return {
        "config.json": config_json.encode(),
        "weights.npz": weights_to_bytes(weights),
        "tables.npz": tables,
        DENSITY_FILE: weights_to_bytes(density_arrays(model)),
    }


def init_model_folder(cfg, out: str | os.PathLike, seed: int = 0, force: bool = False) -> str:
    """Export an untrained (randomly initialised) model folder; returns its fingerprint.

    Useful to test the whole pipeline before any training has run.
    """
    tf = _import_tf()
    from gancomp.runtime.models import write_model_files
    from gancomp.training.model import GANModel

    tf.random.set_seed(seed)
    model = GANModel(cfg, name="gancodec")
    model.build_all()
    files = model_files(model, *export_files(model))
    meta = {"category": cfg.category, "training": None, "note": "untrained"}
    return write_model_files(out, files, meta, force=force)


def train(settings: TrainSettings) -> dict:
    """Train (or resume) and export a model folder; returns a summary dict."""
    return Trainer(settings).run()
