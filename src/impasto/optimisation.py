"""A fixed number of loss evaluations of L-BFGS or Adam on an image, keeping the best image seen:
the optimiser loop of the methods that optimise pixels (Gatys, whole or tile by tile).

L-BFGS runs as one call (max_iter = max_eval = steps) so no evaluation is wasted: calling it one
iteration at a time re-evaluates the loss at the start of every call. Its line search may ask
for one evaluation more than ``max_eval``; ``EvaluationBudget`` stops it exactly at ``steps``.
The image is clamped to [0, 1] when the run ends rather than between L-BFGS iterations, which
would break its curvature estimates. Adam clamps after every step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

OPTIMIZER_CHOICES = ("lbfgs", "adam")
LBFGS_HISTORY = 20  # curvature pairs L-BFGS keeps: 2 x 20 image-sized vectors (the memory)


class BudgetSpent(Exception):
    """Raised by the loss closure once the evaluations are used up."""


class EvaluationBudget:
    """Counts loss evaluations and keeps the best image seen (the last iterate of a line search
    is not always the best one)."""

    def __init__(self, steps: int) -> None:
        self.left = steps
        self.best_loss = float("inf")
        self.best_image: torch.Tensor | None = None

    def spend(self) -> None:
        """Count one evaluation; BudgetSpent when none is left."""
        if self.left <= 0:
            raise BudgetSpent
        self.left -= 1

    def offer(self, value: float, image: torch.Tensor) -> None:
        """``image``'s loss is ``value``: keep a copy of it if it is the best yet."""
        if value < self.best_loss or self.best_image is None:
            self.best_loss = value
            self.best_image = image.detach().clone()


def optimise(
    image: torch.Tensor,
    evaluate: Callable[[], torch.Tensor],
    steps: int,
    budget: EvaluationBudget,
    *,
    optimizer: str = "lbfgs",
    learning_rate: float | None = None,
) -> None:
    """Run ``steps`` evaluations of ``evaluate`` (which calls ``budget.spend()``, computes the
    loss of ``image``, calls backward and ``budget.offer``) with L-BFGS (learning rate 1 by
    default) or Adam (0.02), then leave the best image seen in ``image``, clamped to [0, 1]."""

    def closure():
        image.grad = None
        return evaluate()

    try:
        if optimizer == "lbfgs":
            lbfgs = torch.optim.LBFGS(
                [image], lr=learning_rate or 1.0, max_iter=steps, max_eval=steps,
                history_size=LBFGS_HISTORY, tolerance_grad=-1.0, tolerance_change=-1.0,
                line_search_fn="strong_wolfe",
            )  # fmt: skip
            lbfgs.step(closure)
        else:
            adam = torch.optim.Adam([image], lr=learning_rate or 0.02)
            for _ in range(steps):
                closure()
                adam.step()
                with torch.no_grad():
                    image.clamp_(0, 1)
    except BudgetSpent:
        pass
    with torch.no_grad():
        if budget.best_image is not None:
            image.copy_(budget.best_image)
        image.clamp_(0, 1)
