"""Which style-transfer method fits a situation: a decision table, as data, and its answers.

>>> from impasto.recommend import recommend, format_recommendations
>>> print(format_recommendations(recommend(["video", "photorealistic"])))

``RULES`` maps the user's situations to method ids, most relevant row first; ``METHODS`` says
what each method is, what it trades off, where to start (running it, and training it where it
trains), the command line that runs it and how to get it; ``TENSIONS`` names situations that
pull against each other. A method is available when the method table
(impasto.methods.registry) has it and its extra is installed, "not installed" when the table
has it without its extra, and "not implemented yet" otherwise. A method of the table that these
rows do not describe is added from its row (its summary, trade-offs and the situations it
answers); reading the table imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import InputError
from .methods.registry import METHODS as IMPLEMENTED
from .methods.registry import missing_requirement

SITUATIONS: tuple[str, ...] = (
    "quality",
    "realtime",
    "video",
    "arbitrary_style",
    "photorealistic",
    "text_prompt",
    "brand_consistency",
    "no_content_leak",
)


@dataclass(frozen=True)
class Method:
    """One method: what it is, why pick it, where to start, and how to get it.

    ``defaults``: settings to start from when running it; ``training``: settings to start from
    when training one (per style), kept apart so they are never read as running settings;
    ``usage``: a command line that runs it; ``usage_for``: situation -> a command line that
    fits that situation better; ``train_usage``: the command that trains a new one.
    """

    id: str
    name: str
    reason: str
    trade_offs: str
    defaults: Mapping[str, Any]
    how_to_get: str
    training: Mapping[str, Any] = field(default_factory=dict)
    usage: str = ""
    usage_for: Mapping[str, str] = field(default_factory=dict)
    train_usage: str = ""


@dataclass(frozen=True)
class Rule:
    """One row of the decision table: any of ``situations`` asked -> ``methods``, best first.

    A row with no situations is the answer when no situation is given.
    """

    situations: tuple[str, ...]
    methods: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Tension:
    """Situations that pull against each other, and the trade-off in one sentence."""

    situations: tuple[str, ...]
    text: str


_NOT_YET = "not implemented in impasto yet; elsewhere: "
_REALTIME = "impasto stylize --method fast --model vangogh-bedroom-rt --compile frames/ -o painted/"
_VIDEO = (
    "impasto stylize --method fast --model vangogh-bedroom-rt --compile clip.mp4 -o painted.mp4"
)
_METHOD_ROWS: tuple[Method, ...] = (
    Method(
        "gatys",
        "Gatys et al. (optimisation, L-BFGS)",
        "the best single result: optimises the image against the style's Gram statistics",
        "slow (seconds to minutes per image), one image at a time",
        {"size": 512, "steps": 200, "backbone": "auto"},
        "built in; `impasto download vgg19` fetches the VGG-19 backbone (575 MB) once",
        usage="impasto stylize photo.jpg painting.jpg -o out.png",
    ),
    Method(
        "fast",
        "Fast feed-forward (Johnson et al.)",
        "one forward pass per image once a network is trained for the style",
        "one network per style (training a new one: minutes on a GPU, hours on a CPU); a bit "
        "below Gatys in quality",
        {},
        "built in, with two shipped models: vangogh-bedroom and the smaller vangogh-bedroom-rt "
        "(real time on a CPU)",
        training={"size": 256, "batch": 4, "steps": 4000, "learning_rate": 1e-3, "channels": 32},
        usage="impasto stylize --method fast --model vangogh-bedroom photo.jpg -o out.png",
        usage_for={"realtime": _REALTIME, "video": _VIDEO},
        train_usage="impasto train fast --style painting.jpg --data photos/ -o models/painting",
    ),
    Method(
        "adain",
        "AdaIN (Huang & Belongie)",
        "any painting in one forward pass: matches the channel means and deviations of encoder "
        "features, then a trained decoder paints",
        "softer brushwork than Gatys; --alpha trades style for content",
        {"alpha": 1.0, "style_size": 512},
        "built in, with a shipped decoder for efficientnet-lite0 (no download)",
        training={"size": 256, "batch": 8, "learning_rate": 5e-4, "style_weight": 10.0},
        usage="impasto stylize --method adain photo.jpg painting.jpg -o out.png",
        usage_for={"video": "impasto stylize --method adain clip.mp4 painting.jpg -o out.mp4"},
        train_usage="impasto train decoder --method adain --data photos/ --styles paintings/ "
        "-o models/adain",
    ),
    Method(
        "wct",
        "WCT (Li et al., universal style transfer)",
        "any painting in one pass: whitens then colours features at several layers, coarse to "
        "fine, with decoders trained only to reconstruct photos",
        "bolder than AdaIN and a little slower (eigendecompositions); can blur structure at "
        "high alpha",
        {"alpha": 0.6, "style_size": 512},
        "built in, with shipped decoders for efficientnet-lite0 (no download)",
        training={"size": 256, "batch": 8, "learning_rate": 5e-4, "pixel_weight": 1.0},
        usage="impasto stylize --method wct photo.jpg painting.jpg -o out.png",
        train_usage="impasto train decoder --method wct --data photos/ -o models/wct",
    ),
    Method(
        "photo",
        "Photorealistic: PhotoWCT-like, with deep photo style transfer's region masks",
        "keeps the result a photograph: another photo's colours and tones, the photo's edges "
        "(WCT at three levels, a detail-keeping decoder, edge-aware smoothing); label masks "
        "pair regions (sky to sky)",
        "no brush strokes or painterly texture: for photo-to-photo looks, not paintings",
        {"alpha": 1.0, "smoothing": "fast"},
        "built in, with a shipped decoder for efficientnet-lite0 (no download)",
        training={"size": 192, "batch": 8, "learning_rate": 5e-4, "pixel_weight": 1.0},
        usage="impasto stylize --method photo photo.jpg look.jpg -o out.png",
        train_usage="impasto train decoder --method photo --data photos/ -o models/photo",
    ),
    Method(
        "diffusion",
        "Diffusion: SDXL + IP-Adapter, InstantStyle, ControlNet, style LoRAs",
        "a painting (and optionally a text prompt) steers a diffusion model that redraws the "
        "photo: production-quality images; InstantStyle keeps the painting's content out",
        "a GPU for practical speed (minutes per image on a CPU) and about 23 GB of weights; it "
        "redraws the photo rather than keeping every detail",
        {
            "ip_scale": 0.6,
            "ip_blocks": "style",
            "control": "canny",
            "strength": 0.7,
            "steps": 30,
            "guidance": 5.0,
        },
        "the diffusion extra (pip install 'impasto[diffusion]'), then the weights once: "
        "impasto download sdxl; impasto download ip-adapter-sdxl; impasto download "
        "controlnet-canny-sdxl",
        usage="impasto stylize --method diffusion photo.jpg painting.jpg -o out.png",
        usage_for={
            "text_prompt": "impasto stylize --method diffusion photo.jpg painting.jpg "
            "--prompt 'an oil painting' -o out.png",
            "brand_consistency": "impasto stylize --method diffusion photo.jpg "
            "painting.jpg --lora brand.safetensors:0.8 -o out.png",
        },
    ),
    Method(
        "style-lora",
        "Style LoRA (fine-tuned diffusion model)",
        "the same brand look on every image: the style is learned, not re-read each time",
        "needs 10-30 curated images and a GPU training run; one LoRA per style",
        {"lora_scale": 0.8},
        _NOT_YET + "train an SDXL LoRA (diffusers' train_dreambooth_lora_sdxl.py, kohya-ss)",
        training={"rank": 16, "train_steps": 1000, "learning_rate": 1e-4},
    ),
    Method(
        "fast-temporal",
        "Fast NST with a temporal loss (Ruder et al.; Huang et al.)",
        "real-time video without flicker: a feed-forward network trained with a flow loss",
        "one network per style; training needs video and optical flow",
        {},
        _NOT_YET + "the papers' code trains a fast network with a temporal loss on video "
        "frames and their optical flow",
        training={"train_size": 256, "epochs": 2, "batch_size": 4, "learning_rate": 1e-3},
    ),
    Method(
        "animatediff",
        "AnimateDiff",
        "short stylised clips generated by a diffusion model with a motion module",
        "GPU only, seconds per frame, clips of about 16 frames; content is regenerated",
        {"frames": 16, "steps": 25, "guidance_scale": 7.5},
        _NOT_YET + "the diffusers library with an AnimateDiff motion adapter and an SD 1.5 model",
    ),
)
_DESCRIBED = frozenset(method.id for method in _METHOD_ROWS)


def _table_rows() -> tuple[tuple[Method, ...], tuple[Rule, ...]]:
    """Methods of the method table that the rows above do not describe, and their rules: a
    method that lists the situations it answers is recommended without an edit here."""
    methods, rules = [], []
    for row in IMPLEMENTED.values():
        if row.name in _DESCRIBED:
            continue
        trade_offs = row.trade_offs or f"see `impasto stylize --method {row.name} --help`"
        how_to_get = f"built in: `impasto stylize --method {row.name}`"
        name = row.summary.split(":")[0].capitalize()
        inputs = "--model MODEL photo.jpg" if row.takes_model else "photo.jpg"
        inputs += " painting.jpg" if row.takes_styles else ""
        usage = f"impasto stylize --method {row.name} {inputs} -o out.png"
        methods.append(Method(row.name, name, row.summary, trade_offs, {}, how_to_get, usage=usage))
        if row.situations:
            asked = ", ".join(situation.replace("_", " ") for situation in row.situations)
            rules.append(Rule(row.situations, (row.name,), f"{row.name} for: {asked}"))
    return tuple(methods), tuple(rules)


_TABLE_METHODS, _TABLE_RULES = _table_rows()
METHODS: Mapping[str, Method] = MappingProxyType(
    {method.id: method for method in (*_METHOD_ROWS, *_TABLE_METHODS)}
)

# Row order is relevance order: answers are listed row by row.
RULES: tuple[Rule, ...] = (
    Rule(("quality",), ("gatys",), "single best-quality result"),
    Rule(
        ("video",),
        ("fast", "adain", "fast-temporal", "animatediff"),
        "video: every method keeps a clip steady (--temporal, on for clips); the feed-forward "
        "ones take a fraction of a second per frame",
    ),
    Rule(("realtime", "video"), ("fast", "adain"), "real-time or video"),
    Rule(("arbitrary_style",), ("adain", "wct"), "arbitrary styles in one pass"),
    Rule(("photorealistic",), ("photo",), "keep photographic realism"),
    Rule(("text_prompt",), ("diffusion",), "with a text prompt"),
    Rule(
        ("brand_consistency",),
        ("diffusion", "style-lora"),
        "consistent brand style: a style LoRA (--lora) on the diffusion method",
    ),
    Rule(("no_content_leak",), ("diffusion",), "block content leakage (InstantStyle)"),
    *_TABLE_RULES,
    Rule((), ("gatys", "diffusion"), "default: Gatys one-off, diffusion in production"),
)

TENSIONS: tuple[Tension, ...] = (
    Tension(
        ("quality", "realtime"),
        "quality and realtime pull against each other: the best single image (gatys) takes "
        "seconds to minutes, while real time (fast) needs a network trained for the style and "
        "paints a little less; both are listed, pick the one that matters more",
    ),
    Tension(
        ("quality", "video"),
        "quality and video pull against each other: gatys takes seconds to minutes per frame "
        "(with --temporal each frame starts from the last one and takes half the steps); the "
        "feed-forward methods trade some quality for speed",
    ),
    Tension(
        ("realtime", "text_prompt"),
        "realtime and text_prompt pull against each other: a text prompt needs a diffusion "
        "model (seconds per image on a GPU); the real-time methods take no prompt",
    ),
)
"""Situations asked together that no one method serves well; ``tensions`` says which hold."""


@dataclass(frozen=True)
class Recommendation:
    """One answer: a method, whether impasto can run it now, how, and where to start.

    ``defaults``: settings to start from when running it; ``training``: settings to start
    from when training one; ``usage``: a command line that runs it, fitted to the situations
    asked ("" when impasto does not implement it); ``implemented``: impasto has it (it may
    still need its extra installed: then ``available`` is False).
    """

    method: str
    name: str
    reason: str
    trade_offs: str
    defaults: dict[str, Any]
    available: bool
    how_to_get: str
    because: tuple[str, ...] = ()  # notes of the rows that chose it
    note: str = ""  # e.g. which backbone Gatys would use on this machine now
    implemented: bool = False
    usage: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    train_usage: str = ""

    @property
    def status(self) -> str:
        """ "available", "not installed" (its extra is missing) or "not implemented yet"."""
        if self.available:
            return "available"
        return "not installed" if self.implemented else "not implemented yet"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for `impasto recommend --json`)."""
        return {
            "method": self.method,
            "name": self.name,
            "reason": self.reason,
            "trade_offs": self.trade_offs,
            "status": self.status,
            "available": self.available,
            "implemented": self.implemented,
            "usage": self.usage,
            "defaults": dict(self.defaults),
            "training": dict(self.training),
            "train_usage": self.train_usage,
            "how_to_get": self.how_to_get,
            "because": list(self.because),
            "note": self.note,
        }


def _asked(situations: Iterable[str]) -> set[str]:
    """The situations as a set; InputError naming the valid ones for an unknown one."""
    if isinstance(situations, str):
        situations = [situations]
    asked = set(situations)
    unknown = sorted(asked - set(SITUATIONS))
    if unknown:
        raise InputError(
            f"unknown situation(s) {', '.join(repr(name) for name in unknown)}; "
            f"choose from: {', '.join(SITUATIONS)}"
        )
    return asked


def recommend(situations: Iterable[str] = ()) -> list[Recommendation]:
    """Methods for the given situations (see SITUATIONS), most relevant first, no duplicates.

    Raises InputError for an unknown situation. Recommending Gatys checks which backbone is
    on this machine (imports torch; touches no network).
    """
    asked = _asked(situations)
    if asked:
        rows = [rule for rule in RULES if asked.intersection(rule.situations)]
    else:
        rows = [rule for rule in RULES if not rule.situations]
    reasons: dict[str, list[str]] = {}
    for rule in rows:
        for method_id in rule.methods:
            reasons.setdefault(method_id, []).append(rule.note)
    return [_recommendation(METHODS[name], tuple(notes), asked) for name, notes in reasons.items()]


def tensions(situations: Iterable[str] = ()) -> list[str]:
    """The trade-off sentence of each row of ``TENSIONS`` whose situations were all asked;
    InputError for an unknown situation."""
    asked = _asked(situations)
    return [tension.text for tension in TENSIONS if asked.issuperset(tension.situations)]


def _recommendation(method: Method, because: tuple[str, ...], asked: set[str]) -> Recommendation:
    implemented = method.id in IMPLEMENTED
    usage = method.usage
    for situation in SITUATIONS:  # the first situation asked with a command of its own
        if situation in asked and situation in method.usage_for:
            usage = method.usage_for[situation]
            break
    described = method.id in _DESCRIBED
    unfetched = _weights_missing(method.id) if implemented else []
    note = _gatys_backbone_note() if method.id == "gatys" else ""
    if unfetched:
        note = "weights not here yet: " + "; ".join(f"impasto download {n}" for n in unfetched)
    return Recommendation(
        method=method.id,
        name=method.name,
        reason=method.reason,
        trade_offs=method.trade_offs,
        defaults=dict(method.defaults) if described else _config_defaults(method.id),
        available=implemented and missing_requirement(method.id) is None and not unfetched,
        how_to_get=_how_to_get(method),
        because=because,
        note=note,
        implemented=implemented,
        usage=usage,
        training=dict(method.training),
        train_usage=method.train_usage,
    )


def _how_to_get(method: Method) -> str:
    """The row's text; for a method of the table whose extra is missing, the install command."""
    if method.id in IMPLEMENTED:
        missing = missing_requirement(method.id)
        if missing is not None:
            return f"{missing}; {method.how_to_get}"
    return method.how_to_get


def _config_defaults(method_id: str) -> dict[str, Any]:
    """Where to start for a method of the table that the rows above do not describe: its
    config's defaults for the options that have choices. Imports the method (and torch):
    the defaults cannot drift from the config that way."""
    if method_id not in IMPLEMENTED or missing_requirement(method_id) is not None:
        return {}
    import dataclasses

    from .methods.registry import load_method

    config = load_method(method_id).config_class
    return {f.name: f.default for f in dataclasses.fields(config) if f.metadata.get("choices")}


WEIGHTS_NEEDED: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"diffusion": ("sdxl", "ip-adapter-sdxl", "controlnet-canny-sdxl")}
)
"""Repositories (``impasto download NAME``) a method needs before it can run with its defaults."""


def _weights_missing(method_id: str) -> list[str]:
    """Which of the method's repositories are not on this machine (a look in the Hugging Face
    cache: no download, no torch)."""
    from .repositories import is_present

    return [name for name in WEIGHTS_NEEDED.get(method_id, ()) if not is_present(name)]


def _gatys_backbone_note() -> str:
    from . import weights  # a look in the cache folder: no torch, no network, no hashing

    spec = weights.VGG19
    if weights.known_mismatch(spec):  # remembered from an earlier check; stylize checks anyway
        return (
            "backbone now: efficientnet-lite0 (the cached VGG-19 file does not match its "
            "sha256); run `impasto download vgg19` to replace it"
        )
    if weights.cached_path(spec) is not None:
        return "backbone now: vgg19 (weights cached)"
    return (
        "backbone now: efficientnet-lite0 offline (VGG-19 weights not cached); "
        "run `impasto download vgg19` for the VGG-19 backbone"
    )


def _settings(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items())


def format_recommendations(recommendations: Iterable[Recommendation]) -> str:
    """Plain text for the CLI: one numbered block per recommendation. An available method
    says how to run it; training settings are labelled as such; a method that impasto does
    not implement says so (its settings are the published starting points)."""
    blocks = []
    for number, rec in enumerate(recommendations, start=1):
        lines = [
            f"{number}. {rec.name} [{rec.method}] ({rec.status})",
            f"   why: {rec.reason}",
            f"   trade-offs: {rec.trade_offs}",
        ]
        if rec.implemented and rec.usage:
            lines.append(f"   run it: {rec.usage}")
        if rec.defaults:
            label = "start with" if rec.implemented else "typical settings"
            lines.append(f"   {label}: {_settings(rec.defaults)}")
        if rec.train_usage:  # the folder it writes is the --model of the command above
            lines.append(f"   a new style: {rec.train_usage}")
        if rec.training:
            lines.append(f"   training settings (for a new style): {_settings(rec.training)}")
        if rec.note:
            lines.append(f"   {rec.note}")
        if not rec.available:  # the install command, or where it exists outside impasto
            lines.append(
                f"   to get it: {rec.how_to_get}" if rec.implemented else f"   {rec.how_to_get}"
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
