"""Groups of ``biotag`` sub-commands, one module per concern, each with ``register(app)``.

cli.py keeps the core commands; a capability that adds commands (export, distil, bench,
batch, relations, de-identification, pretraining) adds a module here and its name to
:data:`MODULES`, so that the capabilities do not all edit one file."""

from __future__ import annotations

import importlib

# the --device option's help, one text for every training command
DEVICE_HELP = "cpu, cuda, cuda:N or auto (default: the config's, else cpu)."

MODULES = [
    "biotag.commands.export",
    "biotag.commands.relations",
    "biotag.commands.linking",
    "biotag.commands.batch",
    "biotag.commands.pretrain",
    "biotag.commands.bench",
    "biotag.commands.deid",
    "biotag.commands.distill",
]


def register_all(app) -> None:
    for name in MODULES:
        importlib.import_module(name).register(app)
