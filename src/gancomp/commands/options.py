"""Options shared by commands of several modules."""

from __future__ import annotations

import click

MODELS_DIR_OPTION = click.option(
    "--models-dir",
    type=click.Path(file_okay=False),
    default=None,
    envvar="GANCOMP_MODELS",
    help="Folder of your model folders (default: $GANCOMP_MODELS), searched before the shipped models.",
)
