"""``impasto download NAME``: fetch, check (sha256) and cache weights, with a progress bar."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..errors import InputError, WeightsError
from .terminal import ProgressView, Terminal


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    download = commands.add_parser(
        "download",
        help="download weights (a backbone's, CLIP's for the metrics, the diffusion models)",
        description="Download, verify (sha256) and cache the weights of a backbone or of the "
        "CLIP image encoder used by `impasto evaluate`; or fetch a Hugging Face repository of "
        "the diffusion method into the Hugging Face cache.",
    )
    from ..repositories import REPOSITORIES  # a table: no torch, no hub

    download.add_argument("name", metavar="NAME", help="what to fetch: vgg19, clip-vit-b32, "
                          f"or for the diffusion method {', '.join(REPOSITORIES)}")  # fmt: skip
    download.set_defaults(handler=run)


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    from .. import weights
    from ..backbones import BACKBONES, weights_available
    from ..pipeline import fetch_weights
    from ..repositories import REPOSITORIES, download_repository

    name = args.name
    specs = weights.downloadable()
    if name in REPOSITORIES:  # a Hugging Face repository of the diffusion method
        print(f"{name} stored in {download_repository(name, announce=terminal.line)}")
        return 0
    if name not in specs:
        entry = BACKBONES.get(name)
        if entry is None:
            raise InputError(
                f"cannot download '{name}': unknown name; choose from: "
                f"{', '.join([*specs, *REPOSITORIES])}"
            )
        if entry.random_weights:
            print(f"{name} has random weights: nothing to download")
            return 0
        if not weights_available(name):
            raise WeightsError(f"{name} weights are missing here; they are {entry.weights}")
        print(f"{name} needs no download: its weights are {entry.weights}")
        return 0

    spec = specs[name]
    cached = weights.cached_path(spec)
    if cached is not None:
        if weights.file_sha256(cached) == spec.sha256.lower():  # remembered once checked
            print(f"{name} weights are already cached (sha256 checked): {cached}")
            return 0
        problem = f"{cached} does not match the expected sha256 of the {name} weights"
        if weights.is_offline():  # one line, not a notice followed by the offline error
            raise WeightsError(f"{problem}, and IMPASTO_OFFLINE is set: unset it to replace it")
        # Replaced only here, where the user asked for the download, and said first.
        terminal.line(f"{problem} (damaged or another file): downloading them again")
    with ProgressView(terminal) as view:
        # replaces atomically; download has no option for a local file: errors say where to
        # put a copy instead
        path = fetch_weights(spec, view, again=True, local_flag=None)
    print(f"{name} weights ({spec.license}) stored in {path}")
    return 0
