"""Temporal consistency for any method: what keeps a stylised clip from flickering.

Run frame by frame, a method lands each frame in a different optimum (Gatys) or decodes small
changes of the input into large changes of texture (feed-forward networks): the output
flickers. impasto makes consistency a property of the frame runner (impasto.frames), so it
works for every method, in one of two ways:

- **Methods that optimise** (``Prepared.takes_prior``, Gatys): the previous stylised frame,
  warped onto the current one by the optical flow of the *input* frames, is the optimisation's
  starting point and the target of a temporal loss on the pixels where the flow is reliable
  (Ruder et al. 2016, "Artistic style transfer for videos"): ``TemporalPrior``.
- **Feed-forward methods** (every other): a post-process, ``Stabiliser``, that combines each
  new output x_t with the warped previous *stabilised* output W(y_{t-1}) on the trusted pixels
  r: where the flow is reliable and the two input frames agree after warping (so that flow
  errors, occlusions and new content take the new output: no ghosts).

Three post-process designs, compared in docs/video.md (s: the strength):

- ``carry`` (the default): y_t = x_t + r (W(y_{t-1}) + (1 - s) G(x_t - W(y_{t-1})) - x_t): on
  trusted pixels the previous frame's texture is carried along the flow (warped with a Lanczos
  kernel, which keeps it sharp frame after frame), and only the low frequencies of the new
  output (G, a Gaussian blur) pull its colours along;
- ``blend``: y_t = (1 - s r) x_t + s r W(y_{t-1}): a share s of the new output is replaced
  (averaging two textures flattens them: it costs style);
- ``lowpass``: y_t = x_t + s r G(W(y_{t-1}) - x_t): only colour and brightness are steadied
  (the texture still flickers).

The flow and the warp of the previous frame do not need the new output: ``Stabiliser.begin``
starts them in a background thread (OpenCV releases the GIL) while the method runs.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError
from .flow import FrameMotion, motion_between, opencv, resize_flow, warp

TEMPORAL_DESIGNS: tuple[str, ...] = ("blend", "lowpass", "carry")
WARP_MODES: tuple[str, ...] = ("lanczos", "bicubic", "bilinear", "nearest")
DEFAULT_DESIGN = "carry"
DEFAULT_STRENGTH = 0.6
AGREEMENT = 0.08
"""Largest mean absolute difference (of 1) between an input frame and the warped previous one
at which a pixel still counts as the same point (a flow check on the pixels themselves)."""
LOWPASS_SIGMA = 4.0
FLOW_PRESET = "medium"
FLOW_MAX_SIDE = 512
"""The flow is computed on the frames scaled to at most this long side (docs/video.md: its
cost at 720p), and scaled up to the output."""


def flow_size(size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) at which the flow of frames of ``size`` is computed."""
    height, width = size
    scale = min(1.0, FLOW_MAX_SIDE / max(height, width))
    return max(8, round(height * scale)), max(8, round(width * scale))


def check_strength(strength: float) -> float:
    """``--temporal``: a strength in [0, 1) (0: off, per-frame output)."""
    if not 0.0 <= strength < 1.0:
        raise InputError(f"--temporal must be a strength from 0 (off) to below 1, not {strength}")
    return float(strength)


def parse_temporal(text: str) -> float:
    """``--temporal`` as typed: ``off`` or a number in [0, 1)."""
    if text.strip().lower() in ("off", "none", "no"):
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--temporal takes 'off' or a strength in [0, 1), not '{text}'") from None
    return check_strength(value)


def resized(frame: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, 3, h, w) frame at ``size`` (height, width): bilinear, antialiased when shrinking."""
    frame = frame.reshape(-1, *frame.shape[-3:])[:1].float()
    if tuple(frame.shape[-2:]) == tuple(size):
        return frame
    return F.interpolate(frame, size=size, mode="bilinear", antialias=True, align_corners=False)


def trusted(motion: FrameMotion, previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W): the motion's reliable pixels where the warped previous input frame also
    looks like the current one (``AGREEMENT``)."""
    difference = (motion.warp(previous) - current).abs().mean(1, keepdim=True)
    return motion.reliable * (difference <= AGREEMENT).float()


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, C, H, W) (OpenCV, plane by plane, reflected border)."""
    cv2 = opencv()
    pixels = image.detach().float().cpu().contiguous().numpy()
    out = torch.empty(pixels.shape, dtype=torch.float32)
    planes = out.numpy()
    for index in np.ndindex(*pixels.shape[:2]):
        cv2.GaussianBlur(pixels[index], (0, 0), sigma, dst=planes[index],
                         borderType=cv2.BORDER_REFLECT_101)  # fmt: skip
    return out


def smooth(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """About ``gaussian_blur(image, sigma)``, computed at a quarter of the resolution (the
    low frequencies it keeps survive that): a sixteenth of the work."""
    height, width = image.shape[-2:]
    if min(height, width) < 64 or sigma < 4:
        return gaussian_blur(image, sigma)
    small = F.interpolate(image, scale_factor=0.25, mode="area")
    small = gaussian_blur(small, sigma / 4)
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)


@dataclass
class TemporalPrior:
    """What an optimising method gets for frame t > 0: ``image``, the previous stylised frame
    warped onto this one, (1, 3, H, W) at the output's size; ``reliable`` (1, 1, H, W), where
    it can be trusted; ``strength`` (the user's ``--temporal``), which the method turns into
    its temporal loss weight and its number of steps."""

    image: torch.Tensor
    reliable: torch.Tensor
    strength: float


class FrameMemory:
    """The previous input frame and stylised frame, and the motion to the next one. Holds two
    frames whatever the clip's length."""

    def __init__(self) -> None:
        self.input: torch.Tensor | None = None
        self.output: torch.Tensor | None = None
        self._current: tuple[torch.Tensor, torch.Tensor] | None = None

    def remember(self, input_frame: torch.Tensor, output: torch.Tensor) -> None:
        size = flow_size(tuple(output.shape[-2:]))
        small = self._current  # the frame as carried() resized it, when it did
        if small is None or small[0] is not input_frame or tuple(small[1].shape[-2:]) != size:
            small = (input_frame, resized(input_frame, size).cpu())
        self.input, self._current = small[1], None
        self.output = output.detach().float().cpu()

    def carried(self, input_frame: torch.Tensor, size: tuple[int, int], mode: str = "bilinear"
                ) -> tuple[torch.Tensor, torch.Tensor] | None:  # fmt: skip
        """(warped previous output, trusted mask) at ``size``, or None at the first frame or
        when the frame size changed. The flow is computed at ``flow_size(size)``."""
        if self.input is None or self.output is None or tuple(self.output.shape[-2:]) != size:
            return None
        current = resized(input_frame, tuple(self.input.shape[-2:])).cpu()
        self._current = (input_frame, current)  # remember() takes it rather than resize again
        motion = motion_between(self.input, current, preset=FLOW_PRESET)
        mask = trusted(motion, self.input, current)
        if tuple(mask.shape[-2:]) != size:
            mask = F.interpolate(mask, size=size, mode="bilinear", align_corners=False) > 0.99
            mask = mask.float()
        return warp(self.output, resize_flow(motion.flow, size), mode), mask

    def prior(self, input_frame: torch.Tensor, size: tuple[int, int],
              strength: float) -> TemporalPrior | None:  # fmt: skip
        carried = self.carried(input_frame, size)
        if carried is None:
            return None
        return TemporalPrior(carried[0], carried[1], strength)


class Stabiliser:
    """The feed-forward post-process (module docstring): call it on each output in order."""

    def __init__(self, strength: float = DEFAULT_STRENGTH, design: str = DEFAULT_DESIGN,
                 warp_mode: str = "lanczos") -> None:  # fmt: skip
        if design not in TEMPORAL_DESIGNS:
            raise InputError(
                f"unknown temporal design '{design}'; choose from: {', '.join(TEMPORAL_DESIGNS)}"
            )
        if warp_mode not in WARP_MODES:
            choices = ", ".join(WARP_MODES)
            raise InputError(f"unknown warp mode '{warp_mode}'; choose from: {choices}")
        self.strength = check_strength(strength)
        self.design, self.warp_mode = design, warp_mode
        self.memory = FrameMemory()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[torch.Tensor, tuple[int, int], Future] | None = None

    def begin(self, input_frame: torch.Tensor) -> None:
        """Start the flow and the warp for ``input_frame`` in the background (module
        docstring); the next call with that frame takes the result. Optional."""
        memory = self.memory
        if self.strength == 0 or memory.output is None:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="impasto-flow")
        size = tuple(memory.output.shape[-2:])
        future = self._pool.submit(memory.carried, input_frame, size, self.warp_mode)
        self._pending = (input_frame, size, future)

    def close(self) -> None:
        """Let the background thread go (also when the object is dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._pending = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)

    def _carried(self, input_frame: torch.Tensor, size: tuple[int, int]):
        pending, self._pending = self._pending, None
        if pending is not None:
            result = pending[2].result()  # raises what the thread raised
            if pending[0] is input_frame and pending[1] == size:
                return result
        return self.memory.carried(input_frame, size, self.warp_mode)

    def __call__(self, input_frame: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """``output`` (1, 3, H, W) of ``input_frame`` (any size), made consistent with the
        frames before it."""
        output = output.detach().float().cpu()
        carried = None
        if self.strength > 0:
            carried = self._carried(input_frame, tuple(output.shape[-2:]))
        if carried is not None:
            previous, mask = carried
            if self.design == "blend":
                output = output + self.strength * mask * (previous - output)
            elif self.design == "lowpass":
                change = gaussian_blur(previous - output, LOWPASS_SIGMA)
                output = output + self.strength * mask * change
            else:  # carry: the previous texture, its colours drifting toward the new output's
                refresh = (1 - self.strength) * smooth(output - previous, LOWPASS_SIGMA)
                output = output + mask * (previous + refresh - output)
            output = output.clamp(0, 1)
        self.memory.remember(input_frame, output)
        return output
