"""``impasto backbones``: the feature networks, their licences, and what ``auto`` picks here."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .terminal import Terminal, print_table


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    backbones = commands.add_parser(
        "backbones",
        help="list the feature networks, their licences and weights",
        description="List the registered backbones and what 'auto' picks on this machine.",
    )
    backbones.set_defaults(handler=run)


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    from .. import weights
    from ..backbones import BACKBONES, weights_available

    header = ("name", "licence", "weights here", "weights from", "description")
    rows = []
    for entry in BACKBONES.values():
        if entry.random_weights:
            here = "random"
        else:
            here = "yes" if weights_available(entry.name) else "no"
        rows.append((entry.name, entry.license, here, entry.weights, entry.description))

    # Decided without touching the network (stylize may still download VGG-19 first).
    cached = weights.cached_path(weights.VGG19)
    if cached is not None:
        auto = f"auto -> vgg19 (weights cached in {cached})"
    elif weights.is_offline():
        auto = "auto -> efficientnet-lite0 (VGG-19 weights not cached; IMPASTO_OFFLINE is set)"
    else:
        auto = (
            "auto -> efficientnet-lite0 (VGG-19 weights not cached); when the download server "
            "is reachable, stylize downloads VGG-19 first (run `impasto download vgg19` to do "
            "it now)"
        )
    print_table(header, rows, [auto], fixed=(0, 2))
    return 0
