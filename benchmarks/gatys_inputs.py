"""bench_gatys.py's inputs: the content and style images (or seeded synthetic ones) and the
backbones, with pretrained weights when they are on this machine, else random (speed only)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from impasto.backbones import Backbone, load_backbone, weights_available
from impasto.errors import ImpastoError

# The sibling modules of benchmarks/, also when this file is loaded by path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import note  # noqa: E402

RANDOM_WEIGHTS = "random (speed only)"
SHARED_IMAGES = Path("/work/shared/data/images")
CONTENT_FILE = "air_force_academy_chapel.jpg"  # 1024 x 763, centre-cropped to 4:3
STYLE_FILE = "vangogh-bedroom_in_arles.jpg"
ASPECT = (3, 4)  # height : width of the benchmark content image (landscape 4:3)


def load_inputs(images: Path | None, long_side: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Content (1, 3, 3k, 4k) and style images in [0, 1] on the CPU, and where they came from."""
    height, width = round(long_side * ASPECT[0] / ASPECT[1]), long_side
    if images is not None and (images / "content").is_dir() and (images / "style").is_dir():
        try:
            from impasto.images import load_image, resize_long_side, resize_to
        except ImportError as error:  # Pillow or NumPy missing: speed does not need real images
            note(f"cannot read images ({error}); using synthetic ones")
            return load_inputs(None, long_side)

        def pick(folder: Path, preferred: str) -> Path:
            if (folder / preferred).is_file():
                return folder / preferred
            return sorted(p for p in folder.iterdir() if p.is_file())[0]

        content_path = pick(images / "content", CONTENT_FILE)
        style_path = pick(images / "style", STYLE_FILE)
        content = load_image(content_path).rgb
        h, w = content.shape[-2:]
        if w * ASPECT[0] > h * ASPECT[1]:  # too wide: crop the width
            crop = round(h * ASPECT[1] / ASPECT[0])
            content = content[..., :, (w - crop) // 2 : (w - crop) // 2 + crop]
        else:
            crop = round(w * ASPECT[0] / ASPECT[1])
            content = content[..., (h - crop) // 2 : (h - crop) // 2 + crop, :]
        content = resize_to(content, height, width)
        style = resize_long_side(load_image(style_path).rgb, long_side)
        source = f"{content_path} (centre-cropped to 4:3), style {style_path}"
        return content, style, source
    generator = torch.Generator().manual_seed(0)

    def smooth_noise(h: int, w: int, cells: tuple[int, int]) -> torch.Tensor:
        coarse = torch.rand((1, 3, *cells), generator=generator)
        image = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        return (image + 0.05 * torch.randn((1, 3, h, w), generator=generator)).clamp(0, 1)

    content = smooth_noise(height, width, (12, 16))
    style = smooth_noise(long_side, long_side, (48, 48))
    return content, style, "synthetic: seeded smooth random images (seed 0)"


# --------------------------------------------------------------------------- backbones


def build_backbone(name: str, random_weights: bool | None) -> tuple[Backbone, str]:
    """The backbone (CPU, fp32, frozen, eval mode) and a label saying where its weights are from.

    ``random_weights``: True forces the random initialisation, False requires pretrained weights,
    None uses pretrained weights when they are on this machine, else random.
    """
    torch.manual_seed(0)
    if name == "vgg19":
        if random_weights is True or (random_weights is None and not weights_available("vgg19")):
            from impasto.backbones.vgg import VGG19

            return VGG19().freeze(), RANDOM_WEIGHTS
        return load_backbone("vgg19", allow_download=False), "pretrained (cached ImageNet)"
    if name == "efficientnet-lite0":
        if random_weights is not True:
            try:
                return load_backbone(name, allow_download=False), "pretrained (ImageNet, package)"
            except (ImpastoError, ImportError) as error:
                if random_weights is False:
                    raise
                note(f"efficientnet-lite0: {error}; using random weights (speed only)")
        from impasto.backbones.efficientnet import LITE0_DEFAULTS, LITE0_STAGES, EfficientNetLite

        backbone = EfficientNetLite(LITE0_STAGES, "efficientnet-lite0")
        backbone.defaults = LITE0_DEFAULTS
        # freeze() also puts BatchNorm in eval mode, as load_backbone does.
        return backbone.freeze(), RANDOM_WEIGHTS
    return load_backbone(name, allow_download=False), "as built by load_backbone"


def default_layers(backbone: Backbone) -> tuple[list[str], dict[str, float], str]:
    content_layers = list(backbone.defaults.content_layers)
    style_layers = dict(backbone.defaults.style_layers)
    order = {layer: i for i, layer in enumerate(backbone.layer_names)}
    deepest = max([*content_layers, *style_layers], key=order.__getitem__)
    return content_layers, style_layers, deepest
