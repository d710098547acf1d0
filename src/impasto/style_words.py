"""Style keywords for a painting, and a prompt made of them (``impasto describe-style``,
``--prompt auto`` of the diffusion method).

CLIP (Radford et al. 2021) puts images and words in one space: each term of a small vocabulary
(movements, techniques, palettes, artists; ``VOCABULARY``) is embedded through CLIP's text
tower in the phrase "a painting in the style of TERM" (``TEMPLATE``), the painting through its
image tower, and the terms of each kind are ranked by cosine similarity. The prompt joins the
best term of each kind.

CLIP here is the Hugging Face ``openai/clip-vit-base-patch32`` (text and image towers, MIT
licence) through transformers, from the Hugging Face cache or a local folder: fetched once by
``impasto download clip-text``, never implicitly (impasto's own CLIP loader, impasto.clip, has
the image tower only, for the metrics). Needs the ``diffusion`` extra (transformers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InputError, WeightsError, first_line

CLIP_REPOSITORY = "openai/clip-vit-base-patch32"
TEMPLATE = "a painting in the style of {}"
VOCABULARY: dict[str, tuple[str, ...]] = {
    "movement": (
        "impressionism", "post-impressionism", "expressionism", "cubism", "fauvism",
        "surrealism", "art nouveau", "baroque", "romanticism", "realism", "pointillism",
        "abstract expressionism", "pop art", "ukiyo-e", "renaissance", "minimalism",
        "art deco", "futurism", "symbolism", "naive art",
    ),
    "technique": (
        "thick impasto brushstrokes", "oil painting", "watercolor", "ink wash", "pastel",
        "charcoal drawing", "woodblock print", "mosaic", "fresco", "gouache", "pencil sketch",
        "palette knife", "stippling", "flat colour areas", "glazed layers", "engraving",
    ),
    "palette": (
        "warm ochre and yellow", "cool blues and greens", "muted earth tones", "vivid primaries",
        "pastel colours", "monochrome", "high contrast black and white", "golden light",
        "deep reds", "soft greys", "neon colours", "sepia",
    ),
    "artist": (
        "Vincent van Gogh", "Claude Monet", "Paul Cezanne", "Pablo Picasso", "Henri Matisse",
        "Katsushika Hokusai", "Gustav Klimt", "Edvard Munch", "Georges Seurat", "Wassily Kandinsky",
        "Rembrandt", "J. M. W. Turner", "Paul Gauguin", "Egon Schiele", "Amedeo Modigliani",
        "Johannes Vermeer", "Salvador Dali", "Frida Kahlo", "Piet Mondrian", "Caravaggio",
    ),
}  # fmt: skip
"""The terms, by kind. Artists: painters whose styles are in the public domain."""


@dataclass(frozen=True)
class Keyword:
    kind: str
    term: str
    score: float  # cosine similarity with the painting


def load_clip(source: str | None = None):
    """(model, processor) of CLIP from a local folder or the Hugging Face cache (``source``:
    default ``CLIP_REPOSITORY``); WeightsError naming ``impasto download clip-text``."""
    try:
        import transformers
    except ImportError:
        raise InputError("style keywords need the diffusion extra (transformers): "
                         "pip install 'impasto[diffusion]'") from None  # fmt: skip
    from .repositories import local_folder

    folder = local_folder(source or CLIP_REPOSITORY, "CLIP", "clip-text")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        model = transformers.CLIPModel.from_pretrained(folder, local_files_only=True).eval()
        tokenizer = transformers.CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise WeightsError(f"cannot load CLIP from {folder}: {first_line(error)}") from None
    return model, tokenizer


def describe(image: torch.Tensor, clip=None, *, top: int = 3,
             kinds: Sequence[str] = tuple(VOCABULARY)) -> list[Keyword]:  # fmt: skip
    """The ``top`` terms of each kind for ``image`` ((1, 3, H, W) in [0, 1]), best first."""
    model, tokenizer = clip or load_clip()
    with torch.no_grad():
        picture = model.get_image_features(pixel_values=clip_pixels(image, model))
        picture = torch.nn.functional.normalize(_tensor(picture), dim=-1)
        found = []
        for kind in kinds:
            terms = VOCABULARY[kind]
            tokens = tokenizer([TEMPLATE.format(t) for t in terms], padding=True,
                               return_tensors="pt")  # fmt: skip
            words = _tensor(model.get_text_features(**tokens))
            scores = (torch.nn.functional.normalize(words, dim=-1) @ picture[0]).tolist()
            ranked = sorted(zip(terms, scores, strict=True), key=lambda pair: -pair[1])[:top]
            found += [Keyword(kind, term, score) for term, score in ranked]
    return found


def _tensor(features) -> torch.Tensor:
    """transformers 5 returns an output object where 4 returned the tensor."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output


def clip_pixels(image: torch.Tensor, model) -> torch.Tensor:
    """CLIP's input: the short side resized to the model's size, centre-cropped, normalised
    with CLIP's mean and deviation."""
    from .images import resize_to

    size = model.config.vision_config.image_size
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    resized = resize_to(image[:1].float().cpu(), max(size, round(height * scale)),
                        max(size, round(width * scale)))  # fmt: skip
    top, left = (resized.shape[-2] - size) // 2, (resized.shape[-1] - size) // 2
    crop = resized[..., top : top + size, left : left + size].clamp(0, 1)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    return (crop - mean) / std


def prompt_from(keywords: Sequence[Keyword]) -> str:
    """A prompt from the best term of each kind: "a painting, impressionism, thick impasto
    brushstrokes, warm ochre and yellow, in the style of Vincent van Gogh"."""
    best: dict[str, str] = {}
    for keyword in keywords:
        best.setdefault(keyword.kind, keyword.term)
    parts = ["a painting", *(best[k] for k in ("movement", "technique", "palette") if k in best)]
    if "artist" in best:
        parts.append(f"in the style of {best['artist']}")
    return ", ".join(parts)


def clip_folder_hint() -> Path | None:
    """Where CLIP is, if it is here (for `impasto backbones`-like listings); None otherwise."""
    from .repositories import local_folder

    try:
        return local_folder(CLIP_REPOSITORY, "CLIP", "clip-text")
    except (WeightsError, InputError):
        return None
