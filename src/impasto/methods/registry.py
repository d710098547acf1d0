"""The method table: the single seam every front end reads (the API, the CLI's flags and
commands, compare, recommend, train, export, and later video and the studio).

Adding a method is its file under ``impasto/methods/`` (a ``Method`` subclass exposed as
``METHOD``, see methods/base.py) plus one row here. Rows are plain data: nothing is imported
until a method is used, so ``import impasto`` imports no method and no optional dependency.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class MethodEntry:
    """One row: a method's name, where it lives, what it takes and what it needs."""

    name: str
    module: str  # the file under impasto/methods/ that defines METHOD
    summary: str
    takes_styles: bool  # one or more style images (else the style is in a model)
    takes_model: bool = False  # a trained model (--model)
    trains: bool = False  # `impasto train NAME` exists
    exports: bool = False  # `impasto export` writes its models
    extra: str | None = None  # pip extra it needs: pip install 'impasto[EXTRA]'
    requires: tuple[str, ...] = ()  # modules that extra provides (found without importing)
    situations: tuple[str, ...] = ()  # `impasto recommend` situations it answers (see there)
    trade_offs: str = ""  # what it gives up, for `impasto recommend`

    def __post_init__(self) -> None:
        if self.requires and not self.extra:
            raise ValueError(f"method row '{self.name}': requires without the extra to install")


METHODS: dict[str, MethodEntry] = {
    entry.name: entry
    for entry in (
        MethodEntry(
            "gatys",
            "gatys",
            "optimisation (Gatys et al. 2016): the best single result, seconds to minutes",
            takes_styles=True,
        ),
        MethodEntry(
            "fast",
            "fast",
            "feed-forward network trained once per style (Johnson et al. 2016): real time",
            takes_styles=False,
            takes_model=True,
            trains=True,
            exports=True,
        ),
        MethodEntry(
            "adain",
            "adain",
            "any painting in one pass (AdaIN, Huang & Belongie 2017): a fraction of a second",
            takes_styles=True,
            exports=True,
        ),
        MethodEntry(
            "wct",
            "wct",
            "any painting in one pass, coarse to fine (WCT, Li et al. 2017): bolder than adain",
            takes_styles=True,
            exports=True,
        ),
        MethodEntry(
            "photo",
            "photo",
            "another photo's look, still a photograph (PhotoWCT-like, Li et al. 2018): colours "
            "and tones move, edges stay",
            takes_styles=True,
            situations=("photorealistic",),
            trade_offs="colour and tone only, no brush strokes: for photo-to-photo looks",
        ),
        MethodEntry(
            "color",
            "color",
            "colour only: the photo keeps every detail and takes the painting's palette",
            takes_styles=True,
            situations=("photorealistic",),
            trade_offs="only the colours move: no brush strokes or textures; instant, no network",
        ),
        MethodEntry(
            "diffusion",
            "diffusion",
            "a diffusion model (SDXL or SD 1.5) redraws the photo with the painting as an image "
            "prompt: IP-Adapter, InstantStyle, a ControlNet on the photo's edges, style LoRAs",
            takes_styles=True,
            extra="diffusion",
            requires=("diffusers", "transformers", "peft", "cv2"),
        ),
    )
}
METHOD_CHOICES: tuple[str, ...] = tuple(METHODS)
DEFAULT_METHOD = "gatys"
"""What ``impasto.stylize``, ``impasto stylize`` and a compare setting without ``method=`` run."""


def entry(name: str) -> MethodEntry:
    """The row of ``name``; InputError naming the choices for an unknown one."""
    if name not in METHODS:
        raise InputError(f"unknown method '{name}'; choose from: {', '.join(METHOD_CHOICES)}")
    return METHODS[name]


def missing_requirement(name: str) -> str | None:
    """Why ``name`` cannot run here (its extra is not installed, with the install command), or
    None when it can. Looks for the modules without importing them."""
    row = entry(name)
    missing = [module for module in row.requires if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return f"needs {', '.join(missing)}: pip install 'impasto[{row.extra}]'"


def available_methods() -> tuple[str, ...]:
    """The methods that can run here (their extras installed)."""
    return tuple(name for name in METHODS if missing_requirement(name) is None)


def load_method(name: str):
    """The ``Method`` object of ``name`` (imports its file); InputError when unknown or when its
    optional extra is missing."""
    row = entry(name)
    problem = missing_requirement(name)
    if problem is not None:
        raise InputError(f"method '{name}' {problem}")
    return importlib.import_module(f"{__package__}.{row.module}").METHOD


@dataclass(frozen=True)
class TrainingKind:
    """One kind of ``impasto train KIND``: what it trains and where its trainer lives (an
    object ``TRAINER`` with ``train_config_class``, ``training_inputs``, ``required_inputs``
    and ``train``)."""

    name: str
    module: str  # under impasto/, defines TRAINER
    summary: str
    methods: tuple[str, ...]  # the methods whose models it makes


TRAINING_KINDS: dict[str, TrainingKind] = {
    kind.name: kind
    for kind in (
        *(TrainingKind(name, f"methods.{row.module}", row.summary, (name,))
          for name, row in METHODS.items() if row.trains),
        TrainingKind("decoder", "decoder_training",
                     "the decoders of adain, wct and photo, for a backbone",
                     ("adain", "wct", "photo")),
    )
}  # fmt: skip


def training_kinds() -> tuple[str, ...]:
    """The kinds of ``impasto train KIND``."""
    return tuple(TRAINING_KINDS)


def load_trainer(kind: str):
    """The ``TRAINER`` of a training kind; InputError when unknown or its methods' extra is
    missing."""
    if kind not in TRAINING_KINDS:
        raise InputError(f"unknown training kind '{kind}'; choose from: "
                         f"{', '.join(TRAINING_KINDS)}")  # fmt: skip
    row = TRAINING_KINDS[kind]
    for method in row.methods:
        problem = missing_requirement(method)
        if problem is not None:
            raise InputError(f"training '{kind}' {problem}")
    package = __package__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}.{row.module}").TRAINER


def exporting_methods() -> tuple[str, ...]:
    """Methods whose models ``impasto export`` writes."""
    return tuple(name for name, row in METHODS.items() if row.exports)
