"""Depth from one photo: the picture a depth ControlNet is steered by.

A monocular depth estimator from the Hugging Face cache or a local folder, loaded once with
transformers' ``AutoModelForDepthEstimation`` (Depth Anything V2 Small by default, Apache-2.0;
any depth-estimation repository works, e.g. Intel/dpt-hybrid-midas, the one diffusers' SDXL
depth ControlNet was shown with). These models give relative inverse depth (near is large);
a depth ControlNet wants it as a grey picture, near white and far black, stretched to the
full range: ``DepthEstimator(photo)`` gives that, at the photo's size, as (1, 3, H, W) in [0, 1].
Imports transformers only when a DepthEstimator is made (the ``diffusion`` extra).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import WeightsError, first_line
from .repositories import local_folder

DEFAULT_DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"
FLAT_RANGE = 1e-6
"""A depth range under this (relative to its largest value) is a flat picture: all black."""


class DepthEstimator:
    """A depth model and its image processor, loaded once, run on each photo."""

    def __init__(self, ref: str, device: torch.device) -> None:
        import transformers

        transformers.utils.logging.set_verbosity_error()  # the library never prints
        transformers.utils.logging.disable_progress_bar()
        self.folder: Path = local_folder(ref, "the depth estimator", "depth-anything")
        try:
            self.processor = transformers.AutoImageProcessor.from_pretrained(
                self.folder, local_files_only=True
            )
            model = transformers.AutoModelForDepthEstimation.from_pretrained(
                self.folder, local_files_only=True
            )
        except (OSError, ValueError, KeyError) as error:
            raise WeightsError(
                f"cannot load the depth estimator from {self.folder}: {first_line(error)}"
            ) from None
        self.model = model.eval().to(device)
        self.device = device

    @torch.no_grad()
    def __call__(self, photo: torch.Tensor) -> torch.Tensor:
        """The depth picture of ``photo`` ((1, 3, H, W) in [0, 1]): near white, far black."""
        height, width = photo.shape[-2:]
        inputs = self.processor(
            images=photo[0].float().cpu().clamp(0, 1), do_rescale=False, return_tensors="pt"
        )
        pixels = inputs["pixel_values"].to(self.device, self.model.dtype)
        predicted = self.model(pixel_values=pixels).predicted_depth  # (1, h, w)
        depth = torch.nn.functional.interpolate(
            predicted[:, None].float(), size=(height, width), mode="bicubic", align_corners=False
        ).cpu()
        return normalised(depth).expand(1, 3, -1, -1).clone()


def normalised(depth: torch.Tensor) -> torch.Tensor:
    """``depth`` stretched to [0, 1] (its smallest value black, its largest white); a flat one
    all black."""
    low, high = depth.amin(), depth.amax()
    spread = high - low
    if spread <= FLAT_RANGE * max(high.abs().item(), low.abs().item()):
        return torch.zeros_like(depth)
    return ((depth - low) / spread).clamp(0, 1)
