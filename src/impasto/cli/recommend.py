"""``impasto recommend``: which method fits the user's situation (impasto.recommend)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..recommend import SITUATIONS
from .terminal import Terminal


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    recommend = commands.add_parser(
        "recommend",
        help="which method fits your situation, with reasons and starting parameters",
        description="Say what you need; get the recommended methods, why, their trade-offs, "
        "the command line that runs each available one, the settings to start from (training "
        "settings labelled as such), and whether each is available here, not installed or not "
        "implemented yet. Situations that pull against each other are named first.",
    )
    for situation in SITUATIONS:
        recommend.add_argument(
            "--" + situation.replace("_", "-"),
            dest=situation,
            action="store_true",
            help=SITUATION_HELP.get(situation, situation.replace("_", " ")),
        )
    recommend.add_argument("--json", action="store_true", help="print JSON instead of text")
    recommend.set_defaults(handler=run)


SITUATION_HELP = {
    "quality": "one best-quality result, time is no object",
    "realtime": "real-time speed (many images, live camera)",
    "video": "video with temporal consistency",
    "arbitrary_style": "any new style image without training",
    "photorealistic": "keep the result photographic",
    "text_prompt": "describe the result with a text prompt",
    "brand_consistency": "the same style across many images (a brand)",
    "no_content_leak": "stop the style image's content leaking into the result",
}


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    import json

    from ..recommend import format_recommendations, recommend, tensions

    chosen = [situation for situation in SITUATIONS if getattr(args, situation)]
    recommendations = recommend(chosen)
    trade_offs = [f"note: {text}" for text in tensions(chosen)]
    if args.json:  # stdout stays one JSON document; the notes go to stderr
        for line in trade_offs:
            terminal.line(line)
        print(json.dumps([r.to_dict() for r in recommendations], indent=2, ensure_ascii=False))
    else:
        for line in trade_offs:  # first: the answer below depends on which side matters more
            print(line + "\n")
        print(format_recommendations(recommendations))
    return 0
