"""Photorealistic style transfer: a photo takes another photo's colours and tones and stays a
photograph (after PhotoWCT, Li, Liu, Li, Yang & Kautz, "A Closed-form Solution to
Photorealistic Image Stylization", ECCV 2018; and WCT2, Yoo et al. 2019).

Stylise (``PhotoRunner.transfer``), in one pass:
  1. Encode the photo once at the deepest level l_1 and at the shallower skip levels
     l_2 .. l_n (EfficientNet-Lite0: block5_expand, block3_expand, stem; strides 8, 4, 2).
  2. WCT at every level (impasto.whitening): whiten the photo's features with their own mean
     and covariance, colour them with the style photo's; f' = alpha f_cs + (1 - alpha) f.
     With label masks (``content_mask``, ``style_mask``), region by region: each content
     region is whitened over itself and coloured with its matching style region's statistics
     (sky to sky); a content region with no match takes the whole style photo's.
  3. Decode once with the detail-keeping decoder (impasto.nn.skip_decoder): the deepest
     level's features, the skip levels' joining at their resolution, so edges stay where the
     photo has them.
  4. Grade (impasto.grading, ``--grade``, on by default): the decoded picture's colour
     distribution is moved onto the style photo's (Pitié et al.'s iterative distribution
     transfer: tones and colours, not only their means and covariances), ``alpha`` of the
     rest of the way from step 2's partial result (so about 1 - (1 - alpha)^2 in all);
     with label masks or --mask, region by region. WCT matches feature statistics, which do
     not pin down the pixels' colours when the two scenes differ (docs/photo.md).
  5. Smoothing (impasto.smoothing): pixels with similar colours in the photo are made alike
     again in the result: ``fast`` a guided filter with the photo as the guide, ``exact`` the
     closed-form matting-affinity solution of the PhotoWCT paper, or ``none``. It also
     removes the grain a per-pixel grade can leave (Pitié et al.'s "re-graining").
  6. Structure (impasto.structure, ``--structure``): a look that would take the result's
     luminance SSIM against the photo below the floor (0.6: day to night does) is taken only
     as far as keeps it; ``result.details["structure"]`` says how much was taken.

Decoder (``decoder_loss``): trained to reconstruct photos from their features at every level,
no style image: L = ||D(E(c)) - c||^2 + w * sum_l ||E_l(D(E(c))) - E_l(c)||^2 / n.

Departures from the papers, and why:
- Skip connections carry the shallow levels' (transformed) features where PhotoWCT unpools
  with max-pooling switches: Lite0 downsamples with strided convolutions, so there are no
  switches to keep; WCT2's wavelet bands are the same idea with a fixed transform.
- One decode for every level at once (WCT2), not a decode and re-encode per level (PhotoWCT):
  each round trip through an imperfect decoder loses detail.
- The fast smoothing (a guided filter) by default: the exact solve costs seconds per
  megapixel; the guided filter is the same local affine model (He et al. 2013) without the
  global solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import grading, losses
from ..config import option
from ..errors import InputError
from ..images import resize_to
from ..model_folder import shipped_models
from ..progress import ProgressCallback, ProgressEvent, report
from ..regions import masks_at
from ..smoothing import SMOOTHING_CHOICES, exact_fits, smooth
from ..structure import keep_structure
from ..whitening import colour_transform, style_statistics, whiten_and_colour
from .base import StyleResult
from .feature_transfer import TransferConfig, TransferMethod, TransferRunner

PHOTO_LEVELS = ("block5_expand", "block3_expand", "stem")


@dataclass
class PhotoConfig(TransferConfig):
    """Options of ``stylize --method photo``."""

    alpha: float = option(1.0, "how much of the style photo's look: 0 keeps the photo",
                          min=0.0, max=1.0)  # fmt: skip
    decoder: str | None = option(
        None,
        "the decoder: a folder from `impasto train decoder --method photo`, or a shipped one: "
        f"{', '.join(shipped_models('photo')) or 'none'}",
        metavar="DECODER",
        default_text="the shipped one",
    )
    smoothing: str = option(
        "fast",
        "afterwards, pixels alike in the photo are made alike again: fast (a guided filter), "
        "exact (the closed-form matting solution, about a minute per megapixel) or none",
        choices=SMOOTHING_CHOICES,
    )
    content_mask: str | None = option(
        None,
        "a label image of the photo: regions painted in the colours of --style-mask's take "
        "the look of the style photo's same-coloured regions (sky to sky)",
        metavar="LABELS",
    )
    style_mask: str | None = option(
        None, "a label image of the style photo, for --content-mask", metavar="LABELS"
    )
    grade: bool = option(
        True,
        "after decoding, move the picture's colour distribution onto the style photo's "
        "(a colour grade: tones and colours, region by region with label masks)",
    )
    structure: float = option(
        0.6,
        "the least of the photo's structure to keep (luminance SSIM against the photo): a "
        "look that would take the result below it is taken only as far as it keeps it; 0 "
        "takes the whole look",
        min=0.0,
        max=1.0,
    )


class PhotoRunner(TransferRunner):
    def prepare_styles(self, styles: list[torch.Tensor]) -> None:
        (self.layer,) = self.model.decoders.layers
        (decoder,) = self.model.decoders.configs
        self.levels = (self.layer, *(skip[0] for skip in decoder.skips))
        self.style_stats = []  # per style: {level: StyleStatistics}
        for style in styles:
            features = self.encode(style, self.levels)
            self.style_stats.append({level: style_statistics(features[level])
                                     for level in self.levels})  # fmt: skip
        self.regions = None  # with label masks: [(content mask, {level: stats}), ...]
        self.region_colours = None  # with label masks: each style region's colour sample
        if self.config.content_mask is not None:
            self.regions = self.labelled_regions(styles[0])
        self.colours = [grading.pixel_sample(style) for style in styles]

    def labelled_regions(self, style: torch.Tensor) -> list:
        """Each region's content mask and its style region's statistics at every level."""
        from .. import labels

        content_rgb = labels.as_rgb(self.config.content_mask)
        self.content_labels = content_rgb
        own_size = tuple(content_rgb.shape[-2:])  # its photo's aspect is checked at each run
        found = labels.region_masks(
            content_rgb, self.config.style_mask, own_size, tuple(style.shape[-2:])
        )
        features = self.encode(style, self.levels)
        self.region_colours = [grading.pixel_sample(style, region.style) for region in found]
        regions = []
        for region in found:
            stats = {}
            for level in self.levels:
                weight = masks_at([region.style], tuple(features[level].shape[-2:]))
                stats[level] = style_statistics(features[level], weight.to(features[level]))
            regions.append((region.content, stats))
        return regions

    def masks_for(self, size: tuple[int, int]) -> list[torch.Tensor] | None:
        """With label masks: each labelled region's content mask at ``size``; else --mask's."""
        if self.regions is None:
            return super().masks_for(size)
        return [resize_to(content, *size).to(self.device_object)
                for content, _stats in self.regions]  # fmt: skip

    def transform(self, features: torch.Tensor, level: str, masks, content=None) -> torch.Tensor:
        """One photo's features (1, C, H, W) whitened and coloured (region by region with
        label masks, else blended over the styles, or within --mask regions); ``content``:
        the whole picture's statistics per region, when ``features`` are one tile of it."""
        size = tuple(features.shape[-2:])
        if self.regions is not None:
            weights = masks_at(masks, size)
            weights = (weights / weights.sum(dim=0, keepdim=True).clamp_min(1e-12)).to(features)
            owns = content or [None] * len(self.regions)
            return sum(weight[None] * colour_transform(features, stats[level], weight[None], own)
                       for weight, (_content, stats), own in zip(weights, self.regions, owns,
                                                                 strict=True))  # fmt: skip
        return whiten_and_colour(features, level, self.style_stats, self.weights, masks, content)

    def transfer(self, content, masks, progress: ProgressCallback | None) -> torch.Tensor:
        if self.config.smoothing == "exact":  # before any work: the solve is the largest part
            fits, needed, free = exact_fits(tuple(content.shape[-2:]))
            if not fits:
                raise InputError(
                    f"--smoothing exact needs about {needed:.1f} GB for a "
                    f"{content.shape[-1]}x{content.shape[-2]} picture and {free:.1f} GB are "
                    "free: use --smoothing fast, or a smaller --size"
                )
        if self.regions is not None:
            from ..labels import check_aspect

            check_aspect("--content-mask", self.content_labels, tuple(content.shape[-2:]))
        report(progress, ProgressEvent("photo: whitening, colouring, decoding", 1, 4))
        return self.through(content, masks, self.levels, self.step, progress, "photo")

    def step(self, content: torch.Tensor, masks, whole) -> torch.Tensor:
        """Encode at every level, WCT at each (with ``whole``: the whole picture's
        statistics), decode once."""
        alpha = self.config.alpha
        features = self.encode(content, self.levels)
        targets = {}
        for level in self.levels:
            own = whole[level] if whole else None
            transformed = torch.cat([self.transform(one[None], level, masks, own)
                                     for one in features[level]])  # fmt: skip
            targets[level] = alpha * transformed + (1 - alpha) * features[level].float()
        skips = {level: targets[level].to(self.dtype) for level in self.levels[1:]}
        image = self.decoders(self.layer, targets[self.layer].to(self.dtype),
                              tuple(content.shape[-2:]), skips)  # fmt: skip
        return image.float().clamp(0, 1)

    def finish(self, image: torch.Tensor, content: torch.Tensor,
               progress: ProgressCallback | None) -> torch.Tensor:  # fmt: skip
        """Grade (--grade), smooth (--smoothing), then keep the structure (--structure)."""
        finished, self.looks = [], []
        for picture, photo in zip(image, content, strict=True):
            picture, photo = picture[None], photo[None]
            if self.config.grade:
                report(progress, ProgressEvent("photo: grading colours", 2, 4))
                picture = self.graded(picture)
            report(progress, ProgressEvent(f"photo: smoothing ({self.config.smoothing})", 3, 4))
            picture = smooth(photo, picture, self.config.smoothing)
            report(progress, ProgressEvent("photo: keeping the structure", 4, 4))
            picture, share, structure = keep_structure(photo, picture, self.config.structure)
            self.looks.append({"look_taken": round(share, 3), "ssim": round(structure, 4)})
            if share < 1 and self.notify is not None:
                self.notify(
                    f"photo: {share:.0%} of the look taken, so the photo keeps its "
                    f"structure (SSIM {structure:.2f}, --structure "
                    f"{self.config.structure:g}; --structure 0 takes all of it)"
                )
            finished.append(picture)
        return torch.cat(finished)

    def graded(self, picture: torch.Tensor) -> torch.Tensor:
        """The decoded picture's colours moved ``alpha`` of the rest of the way to the style
        photo's (the decoded picture has ``alpha`` of the look already):
        region by region (label masks, or --mask's styles), else to the styles' blend."""
        masks = self.masks_for(tuple(picture.shape[-2:]))
        if masks is not None:
            references = self.region_colours if self.regions is not None else self.colours
            return grading.grade_to(picture, references, masks, self.config.alpha)
        blend = torch.cat([colours[: max(1, round(weight * len(colours)))]
                           for colours, weight in zip(self.colours, self.weights,
                                                      strict=True)])  # fmt: skip
        return grading.grade_to(picture, [blend], None, self.config.alpha)

    def run(self, content: torch.Tensor, progress: ProgressCallback | None = None) -> StyleResult:
        result = super().run(content, progress)
        result.details["structure"] = self.looks[0] if len(self.looks) == 1 else self.looks
        return result


class PhotoMethod(TransferMethod):
    """The method table's ``photo``: another photo's look, still a photograph."""

    name = "photo"
    config_class = PhotoConfig
    decoder_needs_styles = False
    runner_class = PhotoRunner
    export_formats = ()  # no ONNX graph yet: the skip decoder and the smoothing would need one

    def check(self, config: PhotoConfig, style_count: int | None) -> None:
        super().check(config, style_count)
        from ..labels import check_label_options

        check_label_options(config.content_mask, config.style_mask, style_count)
        if config.content_mask is not None and config.mask is not None:
            raise InputError("--mask and --content-mask/--style-mask: give one or the other")

    # ---------------------------------------------------------------- decoder training

    def decoder_layers(self, backbone) -> tuple[str, ...]:
        """One decoder, from the deepest WCT level."""
        if not backbone.defaults.wct_layers:
            raise ValueError(f"backbone '{backbone.name}' names no WCT layers")
        return tuple(backbone.defaults.wct_layers[:1])

    def decoder_skips(self, backbone) -> tuple[str, ...]:
        """The shallower WCT levels join it on its way up."""
        return tuple(backbone.defaults.wct_layers[1:])

    def decoder_loss(self, backbone, decoders, photos: torch.Tensor, styles,
                     weights: dict[str, float]) -> dict[str, torch.Tensor]:  # fmt: skip
        """Reconstruction from every level at once (module docstring); no styles."""
        (layer,) = decoders.layers
        levels = (layer, *self.decoder_skips(backbone))
        with torch.no_grad():
            targets = backbone(photos, levels)
        skips = {name: targets[name] for name in levels[1:]}
        image = decoders(layer, targets[layer], tuple(photos.shape[-2:]), skips)
        pixel = F.mse_loss(image.float(), photos.float())
        again = backbone(image, levels)
        feature = sum(losses.content_loss(again[name].float(), targets[name].float())
                      for name in levels) / len(levels)  # fmt: skip
        total = weights["pixel"] * pixel + weights["content"] * feature
        return {"total": total, "pixel": pixel, "content": feature}

    def decoder_preview(self, backbone, decoders, photo: torch.Tensor, style) -> torch.Tensor:
        """The photo and its reconstruction, side by side."""
        (layer,) = decoders.layers
        levels = (layer, *self.decoder_skips(backbone))
        features = backbone(photo, levels)
        skips = {name: features[name] for name in levels[1:]}
        decoded = decoders(layer, features[layer], tuple(photo.shape[-2:]), skips)
        return torch.cat([photo, decoded], dim=-1)


METHOD = PhotoMethod()
