"""Optical flow between video frames, the pixels it can be trusted on, and warping.

Used by the video runner (temporal consistency, impasto.temporal) and by the temporal metric
(impasto.metrics.temporal). No downloaded weights: OpenCV's DIS flow (Kroeger et al. 2016,
"Fast Optical Flow using Dense Inverse Search"), in ``opencv-python-headless`` (the ``video``
extra), imported only when a flow is computed.

Conventions: frames are (3, H, W) or (1, 3, H, W) float tensors in [0, 1]. ``flow[:, y, x]`` is
the displacement (dx, dy) in pixels from pixel (x, y) of the frame it is computed *for* to the
matching point in the other frame, so ``warp(other, flow)`` brings the other frame onto this
one. ``motion_between(previous, current)`` gives the flow from the current frame back to the
previous one and the mask of pixels where it is reliable:

- forward-backward consistency (Sundaram et al. 2010, as in Ruder et al. 2016): the flow back
  and the flow forward, followed from each pixel, must nearly cancel:
  ``|f + b(x + f)|^2 <= 0.01 (|f|^2 + |b(x + f)|^2) + 0.5``; pixels disoccluded in the current
  frame (new in it) fail this check;
- the point it comes from must lie inside the previous frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError

FLOW_PRESETS: tuple[str, ...] = ("ultrafast", "fast", "medium")
"""OpenCV DIS presets, fastest first."""

CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5  # pixels squared


@dataclass
class FrameMotion:
    """The motion from the current frame back to the previous one.

    ``flow``: (2, H, W), pixels; ``reliable``: (1, 1, H, W) float, 1 where the previous frame,
    warped by ``flow``, shows the same point (0 at occlusions, disocclusions, the border)."""

    flow: torch.Tensor
    reliable: torch.Tensor

    def warp(self, previous: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
        """``previous`` (B, C, H, W) brought onto the current frame."""
        return warp(previous, self.flow, mode)


def opencv():
    """The cv2 module, or an InputError saying which extra provides it."""
    try:
        import cv2
    except ImportError as error:
        raise InputError(
            "optical flow needs OpenCV, in the video extra: pip install 'impasto[video]'"
        ) from error
    return cv2


def _grey(frame: torch.Tensor):
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> (H, W) uint8 luma (Rec. 601), contiguous."""
    rgb = frame.reshape(-1, *frame.shape[-3:])[0].detach().float().cpu().clamp(0, 1)
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (luma * 255.0 + 0.5).to(torch.uint8).contiguous().numpy()


def optical_flow(frame: torch.Tensor, other: torch.Tensor, preset: str = "medium",
                 scale: float = 1.0) -> torch.Tensor:  # fmt: skip
    """The DIS flow from ``frame`` to ``other`` (same size): (2, H, W) in pixels of
    ``frame``. ``scale`` < 1 computes it on frames resized by that factor (faster) and scales
    it back up."""
    if preset not in FLOW_PRESETS:
        raise InputError(f"unknown flow preset '{preset}'; choose from: {', '.join(FLOW_PRESETS)}")
    if frame.shape[-2:] != other.shape[-2:]:
        raise InputError(
            f"frames of different sizes ({frame.shape[-1]}x{frame.shape[-2]} and "
            f"{other.shape[-1]}x{other.shape[-2]}) have no optical flow between them"
        )
    if not 0 < scale <= 1:
        raise InputError(f"flow scale must be in (0, 1], not {scale}")
    cv2 = opencv()
    height, width = frame.shape[-2:]
    a, b = _grey(frame), _grey(other)
    if scale < 1:
        small = (max(8, round(width * scale)), max(8, round(height * scale)))
        a = cv2.resize(a, small, interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, small, interpolation=cv2.INTER_AREA)
    preset_id = getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}")
    flow = cv2.DISOpticalFlow_create(preset_id).calc(a, b, None)  # (h, w, 2) float32
    flow = torch.from_numpy(flow).permute(2, 0, 1).contiguous()
    return resize_flow(flow, (height, width))


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (2, h, w) flow at ``size`` (height, width): resampled and its vectors scaled with it."""
    if tuple(flow.shape[-2:]) == tuple(size):
        return flow
    factors = torch.tensor([size[1] / flow.shape[-1], size[0] / flow.shape[-2]])
    flow = F.interpolate(flow[None], size=size, mode="bilinear", align_corners=False)[0]
    return flow * factors[:, None, None]


_INTERPOLATION = {
    "nearest": "INTER_NEAREST",
    "bilinear": "INTER_LINEAR",
    "bicubic": "INTER_CUBIC",
    "lanczos": "INTER_LANCZOS4",
}


def _maps(flow: torch.Tensor):
    """OpenCV remap coordinates x + flow(x), y + flow(y): two (H, W) float32 arrays."""
    _, height, width = flow.shape
    f = flow.detach().float().cpu().numpy()
    xs = np.arange(width, dtype=np.float32)[None, :] + f[0]
    ys = np.arange(height, dtype=np.float32)[:, None] + f[1]
    return xs, ys


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``image`` (B, C, H, W) sampled at x + flow(x) (``mode``: "bilinear", "bicubic", or
    "nearest", which copies pixels without blurring them; the border repeats outside)."""
    if mode not in _INTERPOLATION:
        raise InputError(f"unknown warp mode '{mode}'; choose from: {', '.join(_INTERPOLATION)}")
    cv2 = opencv()
    xs, ys = _maps(flow)
    if image.shape[0] * image.shape[1] > 1:  # one fixed-point map for every channel
        xs, ys = cv2.convertMaps(xs, ys, cv2.CV_16SC2)
    interpolation = getattr(cv2, _INTERPOLATION[mode])
    pixels = image.detach().float().cpu().contiguous().numpy()
    out = torch.empty(pixels.shape, dtype=torch.float32)
    planes = out.numpy()
    for index in np.ndindex(*pixels.shape[:2]):  # planes: no HWC copies
        cv2.remap(pixels[index], xs, ys, interpolation, dst=planes[index],
                  borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return out.to(image.dtype)


def inside(flow: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: where x + flow(x) lies inside the frame."""
    _, height, width = flow.shape
    xs, ys = _maps(flow)
    result = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    return torch.from_numpy(result)


def consistent(flow: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: where ``flow`` (this frame to the other) and ``back`` (the other to this)
    cancel, followed from each pixel (the module docstring's check)."""
    back_there = warp(back[None], flow)[0]
    total = (flow + back_there).square().sum(0)
    scale = flow.square().sum(0) + back_there.square().sum(0)
    return total <= CONSISTENCY_RELATIVE * scale + CONSISTENCY_ABSOLUTE


def motion_between(previous: torch.Tensor, current: torch.Tensor, preset: str = "medium",
                   scale: float = 1.0) -> FrameMotion:  # fmt: skip
    """The flow from ``current`` back to ``previous`` and where it is reliable."""
    flow = optical_flow(current, previous, preset, scale)
    back = optical_flow(previous, current, preset, scale)
    reliable = consistent(flow, back) & inside(flow)
    return FrameMotion(flow, reliable.float()[None, None])
