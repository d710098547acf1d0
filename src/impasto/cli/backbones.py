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
    from ..backbones import BACKBONES, download_spec, weights_available
    from ..errors import WeightsError

    header = ("name", "licence", "weights here", "weights from", "description")
    rows = []
    for entry in BACKBONES.values():
        if entry.random_weights:
            here = "random"
        elif weights_available(entry.name):  # cached weights: sha256 checked (once, remembered)
            here = "yes"
        else:
            spec = download_spec(entry.name)
            here = "damaged" if spec is not None and weights.known_mismatch(spec) else "no"
        rows.append((entry.name, entry.license, here, entry.weights, entry.description))

    # Decided without touching the network (stylize may still download VGG-19 first).
    try:
        cached, damaged = weights.verified_path(weights.VGG19), None
    except WeightsError as error:  # a file that fails its sha256 is never used: auto falls back
        cached, damaged = None, str(error)
    if cached is not None:
        auto = f"auto -> vgg19 (weights cached and checked in {cached})"
    elif damaged is not None:
        auto = f"auto -> efficientnet-lite0 ({damaged})"
    elif weights.is_offline():
        auto = "auto -> efficientnet-lite0 (VGG-19 weights not cached; IMPASTO_OFFLINE is set)"
    else:
        auto = (
            "auto -> efficientnet-lite0 (VGG-19 weights not cached); when the download server "
            "is reachable, stylize downloads VGG-19 first (run `impasto download vgg19` to do "
            "it now)"
        )
    print_table(header, rows, [auto], fixed=(0, 2))
    print()
    _diffusion_weights()
    return 0


def _diffusion_weights() -> None:
    """The diffusion method's repositories: which are in the Hugging Face cache (a look only)."""
    import importlib.util

    from ..repositories import REPOSITORIES, is_present

    header = ("diffusion weights", "licence", "here", "size", "repository")
    rows = []
    for name, entry in REPOSITORIES.items():
        here = "yes" if is_present(name) else "no"
        rows.append((name, entry["licence"], here, entry["size"], entry["repo"]))
    note = "fetch one with `impasto download NAME`"
    if importlib.util.find_spec("diffusers") is None:
        note += "; the method needs the diffusion extra: pip install 'impasto[diffusion]'"
    print_table(header, rows, [note], fixed=(0, 2))
