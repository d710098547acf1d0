"""``impasto train KIND``: train a model for the methods of the table (``fast``: a network per
style; ``decoder``: the decoders of adain and wct).

Flags: the kind's training config fields, plus its inputs (--style, --data, --styles). The first
Ctrl-C or SIGTERM finishes the step, saves a checkpoint and exits (130 or 143); a second one
stops at once. The same command with --resume continues bit for bit.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence
from pathlib import Path

from ..errors import Cancelled, InputError
from ..methods.registry import TRAINING_KINDS, load_trainer, training_kinds
from .args import Parser, add_config_flags, given_options, positive_int
from .terminal import ProgressView, Terminal

INPUT_FLAGS = {
    "style": ("--style", "STYLE", "the style image"),
    "data": ("--data", "DIR", "folder of training photos (searched recursively)"),
    "styles": ("--styles", "DIR", "folder of style images (searched recursively; AdaIN)"),
}


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    kinds_text = ", ".join(training_kinds())
    train = commands.add_parser(
        "train",
        help=f"train a model ({kinds_text})",
        description="Train a model once, then stylise in one pass with it: "
        "`impasto stylize --method fast --model MODEL_DIR`, or "
        "`impasto stylize --method adain|wct --decoder MODEL_DIR`. KIND: "
        f"{kinds_text}.",
    )
    if not selected:
        return
    kinds = train.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=Parser)
    for kind in training_kinds():
        summary = TRAINING_KINDS[kind].summary
        parser = kinds.add_parser(
            kind,
            help=summary,
            description=f"Train {summary}. Checkpoints go to MODEL_DIR/training/ every "
            "--checkpoint-every steps; Ctrl-C saves one and stops; --resume continues bit for "
            "bit.",
        )
        parser.set_defaults(handler=run)
        try:
            trainer = load_trainer(kind)
        except InputError:  # its methods' extra is missing
            if kind in argv:
                raise  # one line saying what to install (main shows it)
            continue
        required = getattr(trainer, "required_inputs", trainer.training_inputs)
        for name in trainer.training_inputs:
            flag, metavar, help_text = INPUT_FLAGS[name]
            parser.add_argument(flag, dest=name, required=name in required, metavar=metavar,
                                help=help_text)  # fmt: skip
        parser.add_argument(
            "-o", "--output", required=True, metavar="MODEL_DIR", help="model folder to write"
        )
        parser.add_argument(
            "--data-note",
            dest="data_note",
            metavar="TEXT",
            help="where the photos come from and on what terms (kept in the model's metadata)",
        )
        if "styles" in trainer.training_inputs:
            parser.add_argument(
                "--styles-note",
                dest="styles_note",
                metavar="TEXT",
                help="where the style images come from and on what terms (kept in the metadata)",
            )
        parser.add_argument(
            "--resume", action="store_true", help="continue the interrupted run in MODEL_DIR"
        )
        parser.add_argument(
            "--max-pixels",
            dest="max_pixels",
            type=positive_int,
            metavar="N",
            help="skip training photos with more pixels than this",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        add_config_flags(parser.add_argument_group("training options"), trainer.train_config_class)


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    from .. import pipeline
    from ..training import CHECKPOINT, StopOnSignals

    config_class = load_trainer(args.kind).train_config_class
    config = config_class(**given_options(args, config_class))  # checked by train_model
    folder = Path(args.output).expanduser()
    with (
        StopOnSignals(notify=terminal.line) as stop,
        ProgressView(terminal, args.quiet, items=True) as view,
    ):
        try:
            result = pipeline.train_model(
                args.kind,
                config,
                folder,
                style=getattr(args, "style", None),
                data=getattr(args, "data", None),
                styles=getattr(args, "styles", None),
                styles_note=getattr(args, "styles_note", None),
                resume=args.resume,
                data_note=args.data_note,
                max_pixels=args.max_pixels,
                progress=stop.wrap(view),
                notify=terminal.line,
            )
        except Cancelled as stopped:
            view.close()
            if (folder / CHECKPOINT).is_file():
                terminal.line(
                    f"{stopped}; checkpoint saved in {folder / CHECKPOINT}. Continue with "
                    "the same command and --resume"
                )
            else:
                terminal.line(f"{stopped}: stopped before training began; nothing was saved")
            if stop.signal == signal.SIGTERM:
                terminal.line("impasto: terminated")
                return 128 + signal.SIGTERM  # 143, the shell's code for a SIGTERM
            raise KeyboardInterrupt from None
    trained = result.steps - result.resumed_from
    rate = trained * config.batch / max(result.seconds, 1e-9)
    done = f"{result.seconds:.0f} s, {rate:.1f} images/s" if trained else "no steps left to train"
    terminal.line(
        f"wrote {result.folder} (step {result.steps}, {done}) — {result.backbone} on "
        f"{result.device}"
    )
    return 0
