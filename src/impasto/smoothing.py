"""Edge-aware smoothing after photorealistic stylisation (Li et al. 2018, "A Closed-form
Solution to Photorealistic Image Stylization", section 3.2): pixels whose content colours are
alike within a neighbourhood end up alike, so the result keeps the photo's edges and loses the
painterly texture a feature transform leaves behind.

Two ways, chosen by ``smooth(..., mode)`` from ``SMOOTHING_CHOICES``:

- ``"fast"``: He et al.'s guided filter (2010/2013, colour guide): the content is the guide, the
  change the stylisation made (stylised - content) the source; the output is the content plus,
  in every window, an affine function of the content's colours fitted to that change. O(N)
  whatever the radius, about 0.5 s per megapixel on one CPU core.
- ``"exact"``: the paper's closed-form smoothing with the matting affinity of the content
  (Levin et al. 2008), solved by preconditioned conjugate gradients: 75-200 s per megapixel on
  a small CPU (see ``matting_smooth``), about 130x the fast way.
- ``"none"``: the stylised image unchanged.

Images are float32 (B, 3, H, W) in [0, 1]; the functions here are pure and never print.

Departures from the papers, and why:
- The matting regulariser eps is 1e-5, not FastPhotoStyle's 1e-7: with 1e-7 the 8x8 blocks of a
  JPEG content photo act as edges and flat walls come out blocky (``matting_smooth``).
- The linear system is solved by conjugate gradients in torch (no SciPy, any device), not by a
  sparse direct factorisation; the tolerance bounds the error (``matting_smooth``).
- The exact solve pads the images by 2r pixels (replicated) and crops the result, as
  FastPhotoStyle does: the D^-1/2 normalisation darkens pixels near the border otherwise.
- The fast way filters the change (stylised - content) and adds it to the content, where
  FastPhotoStyle filters the stylised image: same edges, but the photo's faint texture and
  colour spread are kept (``smooth``).
- The guided filter's windows are reflected at the border (He et al. shrink them); either keeps
  the border's colours, and reflection keeps every window the same size.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .guided import (
    ENTRY,
    PAIRS,
    guided_filter_subsampled,
    symmetric_inverse_3x3,
)
from .memory import free_memory_bytes

SMOOTHING_CHOICES = ("fast", "exact", "none")

GUIDED_RADIUS = 35  # pixels, a 71x71 window; chosen by trying, see smooth()
GUIDED_REFERENCE_SIDE = 512  # the long side GUIDED_RADIUS was chosen at (in27.jpg)
GUIDED_EPS = 1e-3  # a colour variance ([0, 1] values): flatter windows are averaged
SUBSAMPLED_PIXELS = 3_000_000  # above this, the fast way fits its models on a smaller copy
MATTING_LAMBDA = 1e-4  # FastPhotoStyle's beta = 0.9999 = 1 / (1 + lambda)
MATTING_EPS = 1e-5  # not 1e-7 (FastPhotoStyle): see matting_smooth
MATTING_TOL = 1e-3
MATTING_MAX_ITER = 2000

# --- matting affinity and the closed-form smoothing --------------------------------------------


def matting_affinity(
    content: torch.Tensor, eps: float = MATTING_EPS, radius: int = 1
) -> torch.Tensor:
    """Matting affinity W of a (1, 3, H, W) image as a sparse CSR (N, N) float64 matrix,
    N = H * W, pixel i = y * W + x (Levin, Lischinski & Weiss, "A Closed-Form Solution to Natural
    Image Matting", TPAMI 2008, eq. 12):

        w_ij = sum over windows k containing i and j of
               (1 / n) (1 + (I_i - mu_k)^T (Sigma_k + eps / n I3)^-1 (I_j - mu_k)),

    windows k of side 2r+1 (n = (2r+1)^2 pixels) lying wholly inside the image, mu_k and
    Sigma_k the mean and (biased, / n) covariance of their colours. Every row of W sums to the
    number of windows that hold the pixel (the colour terms sum to zero over a window), so the
    matting Laplacian L = D - W has the constants and (as eps -> 0) the colour channels in its
    null space. Needs H, W >= 2r + 1.

    Built without Python loops over pixels: the windows' colours are unfolded, the n x n
    affinities of the pixel pairs of every window are added into (4r+1)^2 offset planes (pixel
    i, neighbour i + offset), and the planes become the CSR rows, (4r+1)^2 entries at most.
    """
    _, _, height, width = content.shape
    side = 2 * radius + 1
    if height < side or width < side:
        raise ValueError(
            f"matting affinity needs at least {side}x{side} pixels, got {width}x{height}"
        )
    return _stencil_to_csr(_matting_stencil(content, eps, radius))


def _matting_stencil(content: torch.Tensor, eps: float, radius: int) -> torch.Tensor:
    """The matting affinity as (4r+1, 4r+1, H, W) offset planes: plane (2r + dy, 2r + dx) holds
    w between pixel (y, x) and pixel (y + dy, x + dx) (zero where that is outside the image)."""
    _, _, height, width = content.shape
    side = 2 * radius + 1
    n = side * side
    inner_h, inner_w = height - 2 * radius, width - 2 * radius  # window centres
    colours = F.unfold(content.double(), side).reshape(3, n, inner_h, inner_w)
    centred = colours - colours.mean(dim=1, keepdim=True)  # I_i - mu_k, (3, n, windows)
    covariance = [(centred[m] * centred[k]).mean(dim=0) for m, k in PAIRS]
    for m in range(3):
        covariance[ENTRY[m][m]] = covariance[ENTRY[m][m]] + eps / n
    inverse = symmetric_inverse_3x3(*covariance)
    # Sigma'^-1 (I_i - mu_k), (3, n, windows)
    weighted = torch.stack(
        [sum(inverse[ENTRY[m][k]] * centred[k] for k in range(3)) for m in range(3)]
    )
    reach = 2 * radius  # the largest offset between two pixels of one window
    stencil = centred.new_zeros(2 * reach + 1, 2 * reach + 1, height, width)
    for p in range(n):
        py, px = divmod(p, side)
        for q in range(n):
            qy, qx = divmod(q, side)
            # the affinity of pixel p of every window with pixel q of the same window
            value = (weighted[:, p] * centred[:, q]).sum(dim=0).add_(1).div_(n)
            stencil[reach + qy - py, reach + qx - px, py : py + inner_h, px : px + inner_w] += value
    return stencil


def _stencil_to_csr(stencil: torch.Tensor) -> torch.Tensor:
    """(2R+1, 2R+1, H, W) planes, plane (R + dy, R + dx) holding W[(y, x), (y + dy, x + dx)], ->
    sparse CSR (H W, H W); neighbours outside the image are left out."""
    size_y, size_x, height, width = stencil.shape
    device = stencil.device
    offsets_y = torch.arange(size_y, device=device) - size_y // 2
    offsets_x = torch.arange(size_x, device=device) - size_x // 2
    ys, xs = torch.arange(height, device=device), torch.arange(width, device=device)
    # (H, W, 2R+1, 2R+1) mask of the neighbours inside the image
    inside_y = ((ys[:, None] + offsets_y) >= 0) & ((ys[:, None] + offsets_y) < height)
    inside_x = ((xs[:, None] + offsets_x) >= 0) & ((xs[:, None] + offsets_x) < width)
    inside = (inside_y[:, None, :, None] & inside_x[None, :, None, :]).reshape(-1)
    kept = inside.nonzero().squeeze(1)
    # Offsets dy outer, dx inner: the columns y*W+x + dy*W + dx increase within each row.
    offsets = (offsets_y[:, None] * width + offsets_x[None, :]).reshape(-1)
    per_row = offsets.numel()
    columns = kept // per_row + offsets[kept % per_row]
    values = stencil.permute(2, 3, 0, 1).reshape(-1)[kept]
    counts = inside.reshape(height * width, per_row).sum(dim=1)
    crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            crow, columns, values, size=(height * width, height * width), check_invariants=False
        )


@dataclass(frozen=True)
class MattingSolution:
    """What ``solve_matting`` found: the (1, C, H, W) image, the conjugate-gradient iterations it
    took, and the final relative residual ||b - A x|| / ||b|| (the worst channel)."""

    image: torch.Tensor
    iterations: int
    relative_residual: float


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    start: torch.Tensor,
    diagonal: torch.Tensor,
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, int, float]:
    """Solve A x = b for a symmetric positive definite A given as ``matvec``, every column of
    (N, K) ``rhs`` at once (each with its own step sizes), by conjugate gradients with the
    Jacobi preconditioner ``diagonal`` (N, 1), from ``start``; stop when every column's
    ||b - A x|| <= tol ||b|| or after ``max_iter`` iterations -> (x, iterations, worst relative
    residual). Hestenes & Stiefel 1952; Saad, "Iterative Methods for Sparse Linear Systems",
    algorithm 9.1.
    """
    x = start.clone()
    residual = rhs - matvec(x)
    scale = rhs.norm(dim=0).clamp_min(torch.finfo(rhs.dtype).tiny)
    relative = float((residual.norm(dim=0) / scale).max())
    z = residual / diagonal
    direction = z
    rz = (residual * z).sum(dim=0)
    iterations = 0
    while relative > tol and iterations < max_iter:
        product = matvec(direction)
        curvature = (direction * product).sum(dim=0)
        # A column already solved exactly has a zero direction: step 0, not 0 / 0.
        step = torch.where(curvature > 0, rz / curvature.clamp_min(1e-300), 0.0)
        x.add_(direction * step)
        residual.sub_(product * step)
        iterations += 1
        relative = float((residual.norm(dim=0) / scale).max())
        z = residual / diagonal
        rz_next = (residual * z).sum(dim=0)
        direction = z + direction * torch.where(rz > 0, rz_next / rz.clamp_min(1e-300), 0.0)
        rz = rz_next
    return x, iterations, relative


def solve_matting(
    content: torch.Tensor,
    stylised: torch.Tensor,
    lam: float = MATTING_LAMBDA,
    eps: float = MATTING_EPS,
    radius: int = 1,
    tol: float = MATTING_TOL,
    max_iter: int = MATTING_MAX_ITER,
    pad_border: bool = True,
) -> MattingSolution:
    """``matting_smooth`` of one (1, 3, H, W) content and (1, C, H, W) stylised image, with the
    solver's statistics; see there."""
    if content.dim() != 4 or content.shape[:2] != (1, 3) or stylised.dim() != 4:
        raise ValueError(f"content must have shape (1, 3, H, W), got {tuple(content.shape)}")
    if stylised.shape[0] != 1 or stylised.shape[2:] != content.shape[2:]:
        raise ValueError(
            f"stylised {tuple(stylised.shape)} must be one image the size of the content "
            f"{tuple(content.shape)}"
        )
    if not lam > 0:
        raise ValueError(f"lam must be > 0 (0 leaves R undetermined), got {lam}")
    _, channels, height, width = stylised.shape
    side = 2 * radius + 1
    if height < side or width < side:  # no window fits: no smoothness term, R = Y
        return MattingSolution(stylised.clone(), 0, 0.0)
    if pad_border:
        border = 2 * radius
        padded = solve_matting(
            F.pad(content, (border,) * 4, mode="replicate"),
            F.pad(stylised, (border,) * 4, mode="replicate"),
            lam, eps, radius, tol, max_iter, pad_border=False,
        )  # fmt: skip
        image = padded.image[..., border : border + height, border : border + width]
        return MattingSolution(image.contiguous(), padded.iterations, padded.relative_residual)
    stencil = _matting_stencil(content, eps, radius)
    reach = 2 * radius
    degree = stencil.sum(dim=(0, 1)).reshape(-1, 1)  # windows holding each pixel, >= 1
    inverse_root = degree.rsqrt()
    # Jacobi preconditioner: the diagonal of (1 + lam) I - S, S_ii = w_ii / d_ii
    diagonal = (1 + lam) - stencil[reach, reach].reshape(-1, 1) / degree
    affinity = _stencil_to_csr(stencil)
    del stencil
    target = stylised.double().reshape(channels, -1).T.contiguous()  # Y, (N, C)

    def matvec(x: torch.Tensor) -> torch.Tensor:  # ((1 + lam) I - D^-1/2 W D^-1/2) x
        return (1 + lam) * x - inverse_root * (affinity @ (inverse_root * x))

    result, iterations, relative = conjugate_gradient(
        matvec, lam * target, target, diagonal, tol, max_iter
    )
    image = result.T.reshape(1, channels, height, width).to(stylised.dtype)
    return MattingSolution(image, iterations, relative)


def matting_smooth(
    content: torch.Tensor,
    stylised: torch.Tensor,
    lam: float = MATTING_LAMBDA,
    eps: float = MATTING_EPS,
    radius: int = 1,
    tol: float = MATTING_TOL,
    max_iter: int = MATTING_MAX_ITER,
    pad_border: bool = True,
) -> torch.Tensor:
    """The closed-form photorealistic smoothing of Li et al. 2018 (eq. 5-6): (1, 3, H, W)
    content, (1, C, H, W) stylised Y -> (1, C, H, W) R*, not clamped:

        R* = argmin_R  sum_ij w_ij ||r_i / sqrt(d_ii) - r_j / sqrt(d_jj)||^2
                       + lam sum_i ||r_i - y_i||^2
           = (1 - alpha) (I - alpha S)^-1 Y,  S = D^-1/2 W D^-1/2,  alpha = 1 / (1 + lam),

    W the content's matting affinity (``matting_affinity``), D = diag(row sums of W).
    Solved as ((1 + lam) I - S) R = lam Y (the same system times 1 + lam): symmetric positive
    definite with eigenvalues >= lam (I - S = D^-1/2 L D^-1/2, L = D - W the matting Laplacian,
    is positive semi-definite), diagonal near 1, so Jacobi-preconditioned conjugate gradients
    need no other scaling. Warm start from Y; stop at relative residual ``tol``, which bounds
    the RMS error of R by tol x RMS(Y) (smallest eigenvalue lam, right-hand side lam Y).

    ``pad_border``: replicate-pad both images by 2r pixels, solve, crop (FastPhotoStyle does
    the same). Pixels near the border lie in fewer windows (smaller d_ii), and as the minimiser
    makes r_i / sqrt(d_ii) alike it would darken them, to 1/3 at a corner. What stays: a region
    cut off from the rest of the picture (by a strong content edge) and touching the border gets
    its colour weighted by sqrt(d_ii), a few per cent brighter than its mean for a small region
    (0.84 for 0.80 in a 32x20 px test region), nothing noticeable in a photo's interior.

    Defaults, chosen on in27.jpg (512x397) with a blotchy, noisy stylised copy: lam = 1e-4 as in
    FastPhotoStyle (beta = 0.9999) smooths the blotches away and keeps the stylised colours
    (1e-3 left blotches; 1e-5 took 3x the iterations for little more). eps = 1e-5, not
    FastPhotoStyle's 1e-7: at 1e-7 the 8x8 blocks of a JPEG content photo act as edges and the
    smoothed colour comes out blocky on flat walls; 1e-4 began to blur the photo's fine
    detail. tol = 1e-3: the result differs from a 1e-6 solve by at most 2e-4 (RMS 4e-5),
    far below one 8-bit level. Cost, measured at 512x397 (in27, benchmarks/bench_smoothing.py,
    a busy 2-core AMD EPYC): 444 iterations, each one sparse product with 25 entries per row;
    15 s with one torch thread (74 s per megapixel), 40 s with two threads competing with other
    jobs (197 s per megapixel); about 130x the guided filter. The count hardly depends on the
    size (447 at 128x99). Memory: about 1.1 GB per megapixel (the affinity is float64 CSR).
    """
    return solve_matting(content, stylised, lam, eps, radius, tol, max_iter, pad_border).image


# --- the choice ------------------------------------------------------------------------------


EXACT_BYTES_PER_PIXEL = 1200
"""What the exact smoothing holds per pixel at its peak (the float64 affinity in CSR, 25 entries
a row, and the solver's vectors): about 1.1 GB per megapixel, measured."""


def exact_fits(size: tuple[int, int]) -> tuple[bool, float, float | None]:
    """Whether the exact smoothing of a picture of ``size`` fits in free memory: (fits, the GB
    it needs, the GB free or None where unknown)."""
    needed = size[0] * size[1] * EXACT_BYTES_PER_PIXEL
    free = free_memory_bytes()
    return free is None or needed <= free, needed / 2**30, None if free is None else free / 2**30


def guided_radius(size: tuple[int, int]) -> int:
    """The fast smoothing's radius for an image of ``size`` (height, width): GUIDED_RADIUS at a
    long side of GUIDED_REFERENCE_SIDE, in proportion elsewhere (the blotches it removes are a
    feature transform's, a fixed share of the picture: 35 px on a 96 px image would smooth its
    structure away, as it measurably did), at least 2."""
    return max(2, round(GUIDED_RADIUS * max(size) / GUIDED_REFERENCE_SIDE))


def smooth(content: torch.Tensor, stylised: torch.Tensor, mode: str) -> torch.Tensor:
    """Edge-aware smoothing of (B, 3, H, W) ``stylised`` guided by (B or 1, 3, H, W) ``content``
    -> (B, 3, H, W) in [0, 1]; ``mode`` is one of ``SMOOTHING_CHOICES``:

    - ``"fast"``: ``content + guided_filter(content, stylised - content, radius, eps=1e-3)``
      (colours in [0, 1]), radius 35 px at a long side of 512 px, in proportion to the size
      (``guided_radius``). The filter smooths the change the stylisation made, not the
      stylised picture: in windows flatter than eps it averages, and averaging the picture
      there erased the photo's own faint texture (and narrowed its colours), where averaging
      the change keeps it. On the 15 photoreal pairs at 512 px this kept SSIM within 0.005
      on every pair (up on 10) and moved the colours nearer the look on 14 (colour ratio
      0.513 -> 0.494 on pair 37, 0.552 -> 0.528 on pair 54); see docs/photo.md. Above
      SUBSAMPLED_PIXELS the local models are fitted on a copy shrunk by a whole factor that
      brings it under that (``guided_filter_subsampled``): bounded memory at print sizes.
      On in27.jpg with a blotchy stylised copy, radii 4-16 left colour blotches of a feature
      transform's scale (tens of pixels) and 35 removed them; eps 1e-2 blurred the
      photo's fine detail, 1e-4 and 1e-3 kept it. These are FastPhotoStyle's own values
      (GIFSmoothing(r=35, eps=0.001)). 0.11-0.25 s at 512x397 with one torch thread on a busy
      2-core CPU; 0.5-2 s with two threads there (they wait for each other), see
      benchmarks/bench_smoothing.py.
    - ``"exact"``: ``matting_smooth`` with its defaults: the paper's closed form; minutes per
      megapixel on a CPU.
    - ``"none"``: ``stylised`` unchanged (clamped).

    Images of a batch are smoothed one by one. Both ways compute in float64, which Apple's MPS
    lacks: there they run on the CPU and the result goes back to the stylised image's device.
    """
    if mode not in SMOOTHING_CHOICES:
        raise ValueError(f"smoothing must be one of {', '.join(SMOOTHING_CHOICES)}; got {mode!r}")
    if stylised.dim() != 4 or stylised.shape[1] != 3:
        raise ValueError(f"stylised must have shape (B, 3, H, W), got {tuple(stylised.shape)}")
    if content.dim() != 4 or content.shape[1] != 3 or content.shape[2:] != stylised.shape[2:]:
        raise ValueError(
            f"content {tuple(content.shape)} and stylised {tuple(stylised.shape)} must be "
            "(B, 3, H, W) images of the same size"
        )
    if content.shape[0] not in (1, stylised.shape[0]):
        raise ValueError(
            f"content batch {content.shape[0]} must be 1 or the stylised batch {stylised.shape[0]}"
        )
    if mode == "none":
        return stylised.clamp(0, 1)
    device = stylised.device
    if device.type == "mps":
        content, stylised = content.cpu(), stylised.cpu()
    results = []
    for index in range(stylised.shape[0]):
        guide = content[index if content.shape[0] > 1 else 0][None]
        image = stylised[index][None]
        if mode == "fast":  # the change is smoothed, not the picture: see the docstring
            radius = guided_radius(tuple(image.shape[-2:]))
            pixels = image.shape[-2] * image.shape[-1]
            factor = math.ceil(math.sqrt(pixels / SUBSAMPLED_PIXELS))
            change = guided_filter_subsampled(guide, image - guide, radius, GUIDED_EPS, factor)
            results.append(change.add_(guide))
        else:
            results.append(matting_smooth(guide, image))
    return torch.cat(results).clamp(0, 1).to(device)
