"""Colour tools usable after (or before) any method: images are (B, 3, H, W) RGB in [0, 1].

- ``preserve_luminance``: keep the stylised image's luminance and the content's chrominance
  (YIQ space), i.e. luminance-only style transfer (Gatys et al. 2017, "Controlling perceptual
  factors in neural style transfer", section 5.1), applied as a post-process.
- ``match_color``: a linear colour transfer giving the source image the mean and covariance of a
  reference image's RGB colours (the "histogram matching" variant of the same paper).
- ``preserve_colors``: the ``--preserve-color`` post-process, the same for every method: after
  the method, ``luminance`` keeps the content's colours, ``histogram`` gives the result the
  content's colour statistics.
"""

from __future__ import annotations

import torch

from .errors import InputError

PRESERVE_COLOR_CHOICES: tuple[str, ...] = ("none", "luminance", "histogram")

# NTSC YIQ (FCC 1953 coefficients).
RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ]
)


def _apply_matrix(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(image), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """RGB -> YIQ; Y in [0, 1], I and Q signed."""
    return _apply_matrix(image, RGB_TO_YIQ)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """YIQ -> RGB (exact inverse of ``rgb_to_yiq``; not clamped)."""
    return _apply_matrix(image, torch.linalg.inv(RGB_TO_YIQ.double()).float())


def preserve_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Stylised luminance + content chrominance. ``content`` is resized to match if needed."""
    if content.shape[-2:] != stylized.shape[-2:]:
        content = torch.nn.functional.interpolate(
            content, size=stylized.shape[-2:], mode="bilinear", align_corners=False, antialias=True
        )
    stylized_yiq, content_yiq = rgb_to_yiq(stylized), rgb_to_yiq(content)
    merged = torch.cat([stylized_yiq[:, :1], content_yiq[:, 1:]], dim=1)
    return yiq_to_rgb(merged).clamp(0, 1)


def _mean_cov(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = image.reshape(3, -1).double()
    mean = pixels.mean(dim=1, keepdim=True)
    centered = pixels - mean
    cov = centered @ centered.T / pixels.shape[1] + 1e-5 * torch.eye(
        3, dtype=pixels.dtype, device=pixels.device
    )
    return mean, cov


def _sym_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(1e-10).pow(power)) @ vectors.T


def match_color(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Give ``source`` (1, 3, H, W) the RGB mean and covariance of ``reference`` (1, 3, h, w).

    x' = C_r^{1/2} C_s^{-1/2} (x - mu_s) + mu_r, with symmetric matrix square roots.
    """
    if source.shape[0] != 1 or reference.shape[0] != 1:
        raise ValueError("match_color works on one image at a time (batch size 1)")
    source_mean, source_cov = _mean_cov(source)
    reference_mean, reference_cov = _mean_cov(reference)
    transform = _sym_power(reference_cov, 0.5) @ _sym_power(source_cov, -0.5)
    pixels = source.reshape(3, -1).double()
    matched = transform @ (pixels - source_mean) + reference_mean
    return matched.reshape(source.shape).to(source.dtype).clamp(0, 1)


def preserve_colors(result: torch.Tensor, content: torch.Tensor, mode: str) -> torch.Tensor:
    """``--preserve-color`` after any method: ``result`` (B, 3, H, W) and ``content`` (B, 3, h, w)
    in [0, 1]. ``luminance``: the result's luminance with the content's chrominance (YIQ);
    ``histogram``: the result with the content's colour mean and covariance; ``none``: as is."""
    check_preserve_color(mode)
    if mode == "none":
        return result
    content = content.float().to(result.device)
    if mode == "luminance":
        return preserve_luminance(result, content).clamp(0, 1)
    pairs = zip(result, content, strict=True)
    return torch.cat([match_color(one[None], reference[None]) for one, reference in pairs])


def check_preserve_color(mode: str) -> str:
    if mode not in PRESERVE_COLOR_CHOICES:
        raise InputError(
            f"unknown --preserve-color '{mode}'; choose from: {', '.join(PRESERVE_COLOR_CHOICES)}"
        )
    return mode
