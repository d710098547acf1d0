"""CLIP image encoder (Radford et al. 2021), for the CLIP similarity metrics.

Only the image tower of OpenAI's ViT-B/32 is built: the metrics compare images with images
(output vs style, output vs content), so no tokenizer is needed. The architecture follows the
published model: a 32x32 patch embedding, a class token, learned positions, pre-LayerNorm
transformer blocks with QuickGELU, and a final projection. Its size (width, layers, patch,
resolution, output width) is read from the state dict, so any ViT CLIP checkpoint in OpenAI's
key layout (``visual.*``) loads.

Weights: OpenAI's published archive ``ViT-B-32.pt`` (MIT licence; URL and sha256 in ``WEIGHTS``),
fetched by ``impasto download clip-vit-b32``, never implicitly. That file is a TorchScript
archive: it is opened with ``torch.jit.load`` only after its sha256 matched the published digest
(for the cached copy: checked once and remembered, see ``impasto.weights.verified_path``; a
cached copy that does not match is an error, never loaded).
Any other file must be a plain state dict (``.safetensors``, or a ``.pt`` that
``torch.load(weights_only=True)`` accepts).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import WeightsError
from .weights import CLIP_VIT_B32, cached_path, file_sha256, verified_path, weights_dir

WEIGHTS = CLIP_VIT_B32

# CLIP's input normalisation (from its training pipeline).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): the GELU approximation CLIP was trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)); parameter names as in OpenAI's checkpoint."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, width * 4))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(width * 4, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.ln_1(x)
        x = x + self.attn(normed, normed, normed, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.Sequential(
            *(ResidualAttentionBlock(width, heads) for _ in range(layers))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class CLIPImageEncoder(nn.Module):
    """CLIP's vision transformer: images (B, 3, H, W) in [0, 1] -> unit embeddings (B, D).

    The image is resized so its short side is ``resolution`` (bicubic, antialiased) and
    centre-cropped to a square, as in CLIP's preprocessing, then normalised with CLIP's mean/std.
    """

    def __init__(
        self, width: int, layers: int, patch: int, grid: int, output_dim: int, heads: int
    ) -> None:
        super().__init__()
        self.resolution = patch * grid
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, output_dim))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Short side to ``resolution``, centre crop, CLIP normalisation."""
        height, width = images.shape[-2:]
        scale = self.resolution / min(height, width)
        size = (
            max(self.resolution, round(height * scale)),
            max(self.resolution, round(width * scale)),
        )
        images = F.interpolate(
            images, size=size, mode="bicubic", antialias=True, align_corners=False
        )
        top = (size[0] - self.resolution) // 2
        left = (size[1] - self.resolution) // 2
        images = images[..., top : top + self.resolution, left : left + self.resolution]
        mean = torch.tensor(CLIP_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        return (images.clamp(0, 1) - mean) / std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.preprocess(images))  # (B, width, grid, grid)
        x = x.flatten(2).transpose(1, 2)  # (B, grid*grid, width)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        embedding = self.ln_post(x[:, 0, :]) @ self.proj
        return F.normalize(embedding, dim=-1)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> CLIPImageEncoder:
        """Build the encoder that ``state`` (OpenAI key layout, ``visual.*``) describes and load
        it strictly. Text-tower keys are dropped; a missing or extra ``visual.*`` key raises."""
        visual = {
            key[len("visual.") :]: value
            for key, value in state.items()
            if key.startswith("visual.")
        }
        try:
            width, _, patch, _ = visual["conv1.weight"].shape
            positions = visual["positional_embedding"].shape[0]
            output_dim = visual["proj"].shape[1]
        except (KeyError, ValueError, IndexError) as error:
            raise WeightsError(
                "not a CLIP vision-transformer state dict (needs visual.conv1.weight, "
                "visual.positional_embedding and visual.proj)"
            ) from error
        layers = len(
            {key.split(".")[2] for key in visual if key.startswith("transformer.resblocks.")}
        )
        grid = round((positions - 1) ** 0.5)
        if grid * grid + 1 != positions or layers == 0 or width % 64:
            raise WeightsError(
                f"unsupported CLIP checkpoint: {positions} positions, {layers} layers, "
                f"width {width}"
            )
        encoder = cls(width, layers, patch, grid, output_dim, heads=width // 64)
        missing, unexpected = encoder.load_state_dict(visual, strict=False)
        if missing or unexpected:
            raise WeightsError(
                "CLIP state dict does not match the image encoder: "
                f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}"
            )
        return encoder.eval()


def _read_state(path: Path, trusted_sha256: str) -> dict[str, torch.Tensor]:
    """The tensors of ``path``: a plain state dict, or OpenAI's TorchScript archive when the
    file's sha256 is ``trusted_sha256`` (TorchScript is never opened otherwise)."""
    from .weights import is_torchscript_archive, load_state_dict

    if not is_torchscript_archive(path):
        return load_state_dict(path)
    if file_sha256(path) != trusted_sha256:  # remembered for the cached copy: not re-read
        raise WeightsError(
            f"{path} is a TorchScript archive but not OpenAI's published ViT-B-32.pt (sha256 "
            "differs); impasto opens TorchScript only from that file. Use a safetensors state dict"
        )
    archive = torch.jit.load(str(path), map_location="cpu")
    return {key: value.float() for key, value in archive.state_dict().items()}


def clip_weights_path(path: str | os.PathLike | None = None) -> Path | None:
    """The CLIP weights to use: ``path`` if given, else ``$IMPASTO_CLIP_WEIGHTS``, else the
    cached download; None when there are none (the metrics then say how to get them).
    Size only for the cache: ``load_clip`` checks its sha256 before loading it."""
    named = _named_path(path)
    return named if named is not None else cached_path(WEIGHTS)


def _named_path(path: str | os.PathLike | None) -> Path | None:
    """``path``, else ``$IMPASTO_CLIP_WEIGHTS``, else None (then the cache is used)."""
    chosen = path or os.environ.get("IMPASTO_CLIP_WEIGHTS", "").strip() or None
    return Path(chosen).expanduser() if chosen is not None else None


def missing_reason() -> str:
    """The one-line 'unavailable' reason when no CLIP weights are here."""
    return (
        f"unavailable: weights not found ({weights_dir() / WEIGHTS.filename}); run "
        f"`impasto download {WEIGHTS.name}` or set IMPASTO_CLIP_WEIGHTS to a local copy"
    )


def load_clip(
    path: str | os.PathLike | None = None, trusted_sha256: str = WEIGHTS.sha256
) -> CLIPImageEncoder:
    """Load the CLIP image encoder from ``path`` (see ``clip_weights_path``). Never downloads;
    raises WeightsError when there are no weights, when the cached download does not match its
    sha256 (named, with the fix), or when they do not load."""
    found = _named_path(path)
    if found is None:
        found = verified_path(WEIGHTS)  # never a cached file that fails its sha256
        if found is None:
            raise WeightsError(missing_reason().removeprefix("unavailable: "))
    elif not found.is_file():  # the file the user named (or $IMPASTO_CLIP_WEIGHTS)
        problem = "it is a directory" if found.is_dir() else "file not found"
        raise WeightsError(f"CLIP weights '{found}': {problem}")
    return CLIPImageEncoder.from_state_dict(_read_state(found, trusted_sha256))
