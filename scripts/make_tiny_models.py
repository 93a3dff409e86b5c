#!/usr/bin/env python
"""Build the tiny random models the tests run on, in tests/data/tiny_models: airplane, flower
and ship (factorized prior), hp-airplane and hp-flower (mean-scale hyperprior).

They are randomly initialised (untrained) models in the shipped format, small enough to
commit (about 200 KB each) and fast to run. They are committed so that the runtime tests
need no TensorFlow: this script is the only place that builds them, and it needs the
``train`` extra. Run it again only if the model format changes::

    python scripts/make_tiny_models.py [--force]

Existing model folders are kept (their fingerprints are pinned by committed test files)
unless --force is given.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
SMALL = {"channels": 16, "latent_channels": 16, "disc_channels": 8}
# (category, stride-2 stages, seed): stride 8 for the CIFAR-size ones, 16 like the flower model.
MODELS = (("airplane", 3, 1), ("flower", 4, 2), ("ship", 3, 3))
HYPERPRIOR_MODELS = (("hp-airplane", 3, 4), ("hp-flower", 4, 5))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "tests" / "data")
    parser.add_argument("--force", action="store_true", help="rebuild existing folders")
    args = parser.parse_args(argv)

    from gancomp.training._tf import tf

    tf()  # first, so that TensorFlow's start-up chatter is silenced
    import keras

    from gancomp.training.model import ModelConfig
    from gancomp.training.trainer import init_model_folder

    plan = [("tiny_models", m, {}) for m in MODELS] + [
        ("tiny_models", m, {"entropy_model": "hyperprior", "hyper_channels": 8})
        for m in HYPERPRIOR_MODELS
    ]
    for folder, (category, num_down, seed), extra in plan:
        out = args.data / folder / category
        if out.exists() and not args.force:
            print(f"{out}: kept", file=sys.stderr)
            continue
        keras.utils.set_random_seed(seed)  # Keras' initializers ignore tf.random.set_seed alone
        cfg = ModelConfig(category=category, num_down=num_down, **SMALL, **extra)
        fp = init_model_folder(cfg, out, seed=seed, force=True)
        print(f"{out}: fingerprint {fp}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
