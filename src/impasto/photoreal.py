"""Gatys' photorealistic mode (Luan, Paris, Shechtman & Bala, "Deep Photo Style Transfer",
CVPR 2017): two terms the optimisation adds to the perceptual loss.

- The photorealism regulariser: L_m = sum_c V_c(O)^T L V_c(O) / N, with L = D - W the matting
  Laplacian of the content photo (impasto.smoothing.matting_affinity, Levin et al. 2008) and
  V_c(O) the output's channel c as a vector of its N pixels. It is zero exactly when the output
  is, within every 3x3 window, an affine function of the photo's colours: edges stay where the
  photo has them and no texture appears that the photo does not have. Divided by N so that its
  weight keeps its meaning across sizes (the paper's lambda = 1e4 is for its own scaling).
- The masked style loss: with label masks, each region r of the output matches the Gram matrix
  of its own region of the style photo: sum_r sum_l a_l ||G(F_l M_r) - G(S_l M'_r)||^2, the
  masks averaged down to each layer and each Gram matrix divided by its region's share of the
  picture (so a small region counts as much per pixel as a large one, as in the paper).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .losses import gram_matrix, style_loss
from .regions import masks_at
from .smoothing import matting_affinity

MIN_SHARE = 1e-3  # a region smaller than this share of a layer has no Gram matrix of its own


class MattingRegulariser:
    """L_m of the module docstring for one content photo (at one scale), as a callable."""

    def __init__(self, content: torch.Tensor) -> None:
        affinity = matting_affinity(content[:1].double().cpu()).to_sparse_coo().coalesce()
        degree = torch.sparse.sum(affinity, dim=1).to_dense()
        count = degree.shape[0]
        diagonal = torch.arange(count)
        indices = torch.cat([affinity.indices(), torch.stack([diagonal, diagonal])], dim=1)
        values = torch.cat([-affinity.values(), degree])
        laplacian = torch.sparse_coo_tensor(
            indices, values, (count, count), check_invariants=False
        ).coalesce()  # built here from valid indices: no checks needed
        self.laplacian = laplacian.float().to(content.device)
        self.size = tuple(content.shape[-2:])

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """L_m of ``image`` (1, 3, H, W), the content's size."""
        if tuple(image.shape[-2:]) != self.size:
            raise ValueError(f"the regulariser was built for {self.size}, not {image.shape[-2:]}")
        vectors = image[0].reshape(3, -1).T.float()  # (N, 3)
        product = torch.sparse.mm(self.laplacian, vectors)
        return (vectors * product).sum() / vectors.shape[0]


def masked_grams(
    features: dict[str, torch.Tensor], masks: Sequence[torch.Tensor], layers: Sequence[str]
) -> dict[str, list[torch.Tensor | None]]:
    """Per layer, the Gram matrix of ``features`` within each mask (None for a region too
    small at that layer), divided by the region's share (module docstring)."""
    grams: dict[str, list[torch.Tensor | None]] = {}
    for name in layers:
        layer = features[name].float()
        grams[name] = []
        for mask in masks_at(masks, tuple(layer.shape[-2:])):  # (1, h, w) each
            share = float(mask.mean())
            mask = mask.to(layer)
            grams[name].append(gram_matrix(layer * mask) / share if share >= MIN_SHARE else None)
    return grams


def masked_style_loss(
    features: dict[str, torch.Tensor],
    masks: Sequence[torch.Tensor],
    targets: dict[str, list[torch.Tensor | None]],
    layers: dict[str, float],
) -> torch.Tensor:
    """The masked style loss: each region's Gram matrix against its target (``masked_grams`` of
    the style photo with its masks), weighted by the layers' weights, summed over regions."""
    grams = masked_grams(features, masks, list(layers))
    weight_sum = sum(layers.values()) or 1.0
    total = torch.zeros((), device=next(iter(features.values())).device)
    for name, weight in layers.items():
        for gram, target in zip(grams[name], targets[name], strict=True):
            if gram is not None and target is not None:
                total = total + weight * style_loss(gram, target)
    return total / weight_sum
