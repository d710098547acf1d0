"""He et al.'s guided filter with a colour guide (TPAMI 2013), exact and subsampled (He & Sun,
"Fast Guided Filter", 2015): the fast way of impasto.smoothing. Float64 inside; pure
functions on (B, C, H, W) tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The six distinct entries (m, n), m <= n, of a symmetric 3x3 matrix, in the order that
# symmetric_inverse_3x3 takes and returns them; ENTRY[m][n] is the place of (m, n) or (n, m).
PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
ENTRY = ((0, 1, 2), (1, 3, 4), (2, 4, 5))


def box_mean(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of (B, K, H, W) over the (2r+1) x (2r+1) window around every pixel -> same shape.

    Reflect padding (the pixel beyond the border is the one inside it: index -1 -> 1), then
    running sums (cumulative sums, one difference per axis), so the cost does not grow with the
    radius. Meant for float64: cumulative sums in float32 lose ~1e-7 of a row's total. The
    radius is clamped per axis to H - 1 and W - 1 (the largest that reflect padding allows), so
    images smaller than the window still work.
    """
    height, width = image.shape[-2:]
    ry, rx = min(radius, height - 1), min(radius, width - 1)
    if ry == 0 and rx == 0:
        return image
    # One extra zero row and column in front: the running sums then start at zero.
    padded = F.pad(F.pad(image, (rx, rx, ry, ry), mode="reflect"), (1, 0, 1, 0))
    sums = padded.cumsum(dim=-2)
    sums = sums[..., 2 * ry + 1 :, :] - sums[..., : -2 * ry - 1, :]
    sums = sums.cumsum(dim=-1)
    sums = sums[..., 2 * rx + 1 :] - sums[..., : -2 * rx - 1]
    return sums / ((2 * ry + 1) * (2 * rx + 1))


def symmetric_inverse_3x3(
    s00: torch.Tensor,
    s01: torch.Tensor,
    s02: torch.Tensor,
    s11: torch.Tensor,
    s12: torch.Tensor,
    s22: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """Inverse of a batch of symmetric 3x3 matrices, given and returned as their six distinct
    entries in ``PAIRS`` order (each a tensor of any one shape): adjugate / determinant.

    Closed form, so a million small systems cost a few element-wise products (no LAPACK call
    per matrix); meant for regularised, well-conditioned matrices.
    """
    c00 = s11 * s22 - s12 * s12
    c01 = s02 * s12 - s01 * s22
    c02 = s01 * s12 - s02 * s11
    c11 = s00 * s22 - s02 * s02
    c12 = s01 * s02 - s00 * s12
    c22 = s00 * s11 - s01 * s01
    determinant = s00 * c00 + s01 * c01 + s02 * c02
    return tuple(cofactor / determinant for cofactor in (c00, c01, c02, c11, c12, c22))


def guided_filter(
    guide: torch.Tensor, source: torch.Tensor, radius: int, eps: float
) -> torch.Tensor:
    """He et al.'s guided filter with a colour guide: (B, 3, H, W) guide, (B, C, H, W) source ->
    (B, C, H, W) in the source's dtype.

    In every window w_k (side 2r+1) the output is modelled as q = a_k^T I + b_k, a_k in R^(3 x C):
    a_k = (Sigma_k + eps U)^-1 cov_k(I, p), b_k = mean_k(p) - a_k^T mean_k(I), with Sigma_k the
    3x3 covariance of the guide's colours in the window. Each pixel averages the models of the
    windows that contain it: q_i = mean(a)_i^T I_i + mean(b)_i. Where the guide is flat
    (variance << eps) a -> 0 and q is the box mean of the source (texture is removed); across
    a guide edge (variance >> eps) q follows the guide (the edge is kept). Box means as in
    ``box_mean`` (reflect padding, radius clamped to the image). He, Sun & Tang, "Guided Image
    Filtering", TPAMI 2013, eq. 19-21 and algorithm 1.

    Float64 inside, one (B, 1, H, W) plane at a time: a tiny eps stays meaningful, and small
    temporaries stay in cache (whole (B, 21, H, W) stacks ran 4x slower on a 2-core CPU).
    """
    if guide.dim() != 4 or guide.shape[1] != 3:
        raise ValueError(f"guide must have shape (B, 3, H, W), got {tuple(guide.shape)}")
    if (
        source.dim() != 4
        or source.shape[0] != guide.shape[0]
        or source.shape[2:] != guide.shape[2:]
    ):
        raise ValueError(
            f"source {tuple(source.shape)} must match the guide {tuple(guide.shape)} in batch "
            "and size"
        )
    centre, offset, coefficients = _guided_coefficients(guide, source, radius, eps)
    return _apply_coefficients(coefficients, guide.double() - centre, offset).to(source.dtype)


def _guided_coefficients(guide: torch.Tensor, source: torch.Tensor, radius: int, eps: float):
    """The guided filter's averaged local models: (centre (B, 3, 1, 1), offset (B, C, 1, 1),
    (B, 4C, H, W) float64 planes mean(a)_0..2, mean(b) per source channel), in the frame
    where the guide has its mean ``centre`` and the source its mean ``offset`` removed."""
    # Centred: the filter commutes with adding constants, and E[xy] - E[x]E[y] loses less.
    centre = guide.double().mean(dim=(2, 3), keepdim=True)
    image = guide.double() - centre
    offset = source.double().mean(dim=(2, 3), keepdim=True)
    target = source.double() - offset
    colours = image.split(1, dim=1)  # I_m, 3 planes (B, 1, H, W)
    mean_i = [box_mean(colour, radius) for colour in colours]
    variance = [box_mean(colours[m] * colours[n], radius) - mean_i[m] * mean_i[n] for m, n in PAIRS]
    for m in range(3):
        variance[ENTRY[m][m]] = variance[ENTRY[m][m]] + eps
    inverse = symmetric_inverse_3x3(*variance)
    planes = []
    for channel in target.split(1, dim=1):  # p, one channel of the source
        mean_p = box_mean(channel, radius)
        cross = [box_mean(colours[m] * channel, radius) - mean_i[m] * mean_p for m in range(3)]
        a = [sum(inverse[ENTRY[m][n]] * cross[n] for n in range(3)) for m in range(3)]
        b = mean_p - sum(a[m] * mean_i[m] for m in range(3))
        planes += [box_mean(a[m], radius) for m in range(3)] + [box_mean(b, radius)]
    return centre, offset, torch.cat(planes, dim=1)


def _apply_coefficients(coefficients: torch.Tensor, image: torch.Tensor,
                        offset: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """q = mean(a)^T I + mean(b) + offset per source channel, for a centred guide ``image``."""
    outputs = []
    for index in range(coefficients.shape[1] // 4):
        a0, a1, a2, b = coefficients[:, 4 * index : 4 * index + 4].split(1, dim=1)
        outputs.append(b + a0 * image[:, 0:1] + a1 * image[:, 1:2] + a2 * image[:, 2:3])
    return torch.cat(outputs, dim=1) + offset


SUBSAMPLED_ROWS = 256  # rows of the full-size picture made at a time


def guided_filter_subsampled(guide: torch.Tensor, source: torch.Tensor, radius: int, eps: float,
                             factor: int) -> torch.Tensor:  # fmt: skip
    """The fast guided filter (He & Sun, "Fast Guided Filter", 2015): the local models a and b
    fitted on copies ``factor`` times smaller (area means, radius / factor), upsampled
    bilinearly, applied to the full-size guide: q = up(mean a)^T I + up(mean b). The models
    are box means over windows of 2r + 1 pixels, smooth at that scale, so they lose little by
    being fitted small. Bands of SUBSAMPLED_ROWS rows at a time: bounded memory at any size.
    ``factor`` 1 is ``guided_filter``."""
    if factor <= 1:
        return guided_filter(guide, source, radius, eps)
    height, width = guide.shape[-2:]
    small = (max(1, height // factor), max(1, width // factor))
    centre, offset, coefficients = _guided_coefficients(
        F.interpolate(guide.double(), size=small, mode="area"),
        F.interpolate(source.double(), size=small, mode="area"),
        max(1, round(radius / factor)), eps,
    )  # fmt: skip
    output = torch.empty(source.shape, dtype=source.dtype)
    columns = (torch.arange(width, dtype=torch.float64) + 0.5) * 2 / width - 1
    for top in range(0, height, SUBSAMPLED_ROWS):
        bottom = min(height, top + SUBSAMPLED_ROWS)
        rows = (torch.arange(top, bottom, dtype=torch.float64) + 0.5) * 2 / height - 1
        grid = torch.stack(torch.meshgrid(rows, columns, indexing="ij")[::-1], dim=-1)
        grid = grid[None].expand(guide.shape[0], -1, -1, -1)
        band = F.grid_sample(coefficients, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)  # fmt: skip
        image = guide[..., top:bottom, :].double() - centre
        output[..., top:bottom, :] = _apply_coefficients(band, image, offset).to(source.dtype)
    return output
