"""``impasto describe-style PAINTING``: style keywords CLIP finds in a painting, and the prompt
they make (what ``--method diffusion --prompt auto`` uses)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from .args import positive_int
from .terminal import Terminal


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    describe = commands.add_parser(
        "describe-style",
        help="style keywords for a painting (movement, technique, palette, artist) and a prompt",
        description="Rank a vocabulary of art movements, techniques, palettes and artists by "
        "CLIP similarity to the painting, and write the prompt `--method diffusion --prompt "
        "auto` uses. Needs the diffusion extra and CLIP's weights (impasto download clip-text).",
    )
    describe.add_argument("style", metavar="PAINTING", help="the painting (an image file)")
    describe.add_argument(
        "--top", type=positive_int, default=3, metavar="N", help="terms of each kind (default: 3)"
    )
    describe.add_argument(
        "--clip",
        default=None,
        metavar="ID_OR_FOLDER",
        help="the CLIP model (default: openai/clip-vit-base-patch32)",
    )
    describe.add_argument("--json", action="store_true", help="print JSON")
    describe.set_defaults(handler=run)


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    from .. import style_words
    from ..images import load_image

    image = load_image(args.style)
    keywords = style_words.describe(image.rgb, style_words.load_clip(args.clip), top=args.top)
    prompt = style_words.prompt_from(keywords)
    if args.json:
        found = [{"kind": k.kind, "term": k.term, "score": round(k.score, 4)} for k in keywords]
        print(json.dumps({"keywords": found, "prompt": prompt}, indent=1))
        return 0
    for kind in style_words.VOCABULARY:
        terms = [f"{k.term} ({k.score:.3f})" for k in keywords if k.kind == kind]
        print(f"{kind:<10} {', '.join(terms)}")
    print(f"prompt     {prompt}")
    return 0
