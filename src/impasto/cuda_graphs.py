"""One loss evaluation (forward and backward) captured in a CUDA graph and replayed: the step of
the methods that optimise pixels, for networks whose step is bound by kernel launches rather
than by arithmetic (EfficientNet-Lite's step costs about the same at any size on a large GPU:
hundreds of small kernels, each launched from Python).

How (torch.cuda.CUDAGraph, the "whole network capture" recipe of PyTorch's CUDA semantics
notes): the optimised image is a tensor that L-BFGS and Adam update in place, so its address
never changes within a scale. The first WARMUP_EVALUATIONS evaluations run eagerly on a side
stream (cuDNN picks its algorithms, autograd sets itself up); the next one captures the forward
and backward once, replays the graph, and checks the replay against an eager evaluation of the
same image. From then on every evaluation is one replay: the loss terms and the gradient are
written into the same tensors each time (``image.grad`` is pointed back at the graph's own
gradient after each replay, since optimisers set it to None between evaluations).

Safety: a capture that fails, or a replay that disagrees with the eager evaluation beyond
REPLAY_TOLERANCE, leaves the evaluation eager for the rest of the scale, and ``fallback`` says
why (the method reports it in one line). Autocast's weight cache must be off inside a capture
(``impasto.devices.autocast(..., cache=False)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

Terms = dict[str, torch.Tensor]
Objective = Callable[[torch.Tensor], tuple[torch.Tensor, Terms]]

WARMUP_EVALUATIONS = 3  # eager evaluations before the capture
REPLAY_TOLERANCE = 1e-3  # relative difference allowed between a replay and an eager evaluation


def forward_backward(objective: Objective, image: torch.Tensor) -> tuple[torch.Tensor, Terms]:
    """The loss terms of ``image`` (their ``total`` among them), detached, with the gradient of
    the total in ``image.grad``."""
    image.grad = None
    total, terms = objective(image)
    total.backward()
    return total.detach(), {name: value.detach() for name, value in terms.items()}


class CudaGraphs:
    """torch.cuda's graphs behind the two calls GraphedEvaluation makes (tests pass a stand-in
    that runs on the CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream: torch.cuda.Stream | None = None

    @contextlib.contextmanager
    def side_stream(self):
        """Run the block on a side stream, ordered after and before the current stream's work."""
        if self.stream is None:
            self.stream = torch.cuda.Stream(self.device)
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            yield
        current.wait_stream(self.stream)

    def capture(self, run: Callable[[], tuple]) -> tuple[tuple, Callable[[], None]]:
        """(the tensors ``run`` returned while captured, a function that replays it: each
        replay writes its results into those same tensors)."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = run()
        return outputs, graph.replay


class GraphedEvaluation:
    """``forward_backward(objective, image)`` for one scale, replayed from a CUDA graph after
    WARMUP_EVALUATIONS eager ones (see the module's notes). Call it once per evaluation."""

    def __init__(self, objective: Objective, image: torch.Tensor, graphs) -> None:
        self.objective, self.image, self.graphs = objective, image, graphs
        self.eager_left = WARMUP_EVALUATIONS
        self.replay: Callable[[], None] | None = None
        self.outputs: tuple[torch.Tensor, Terms] | None = None
        self.gradient: torch.Tensor | None = None
        self.fallback: str | None = None  # why the evaluation stays eager

    def __call__(self) -> tuple[torch.Tensor, Terms]:
        if self.replay is not None:
            self.replay()
            self.image.grad = self.gradient
            return self.outputs
        if self.fallback is not None:
            return forward_backward(self.objective, self.image)
        if self.eager_left > 0:
            self.eager_left -= 1
            with self.graphs.side_stream():
                return forward_backward(self.objective, self.image)
        return self._capture()

    def _capture(self) -> tuple[torch.Tensor, Terms]:
        with self.graphs.side_stream():
            eager = forward_backward(self.objective, self.image)
            eager_gradient = self.image.grad.detach().clone()

        def captured():
            total, terms = forward_backward(self.objective, self.image)
            return total, terms, self.image.grad

        try:
            (total, terms, gradient), replay = self.graphs.capture(captured)
            replay()
        except Exception as error:  # noqa: BLE001 - any failure: stay eager, say why
            self.fallback = f"the capture failed ({type(error).__name__}: {error})"
        else:
            self.fallback = replay_disagrees(eager, eager_gradient, total, gradient)
            if self.fallback is None:
                self.replay, self.outputs, self.gradient = replay, (total, terms), gradient
                self.image.grad = gradient
                return total, terms
        self.image.grad = eager_gradient
        return eager


def replay_disagrees(eager, eager_gradient, replayed_total, gradient) -> str | None:
    """Why a replay's total loss and gradient differ from an eager evaluation's, or None."""
    if gradient is None or gradient.shape != eager_gradient.shape:
        return "the captured backward gave no gradient of the image"
    total, replayed_total = eager[0].float(), replayed_total.float()
    scale = eager_gradient.float().norm().clamp_min(1e-30)
    loss_error = float((replayed_total - total).abs() / total.abs().clamp_min(1e-30))
    gradient_error = float((gradient.float() - eager_gradient.float()).norm() / scale)
    if not (loss_error <= REPLAY_TOLERANCE and gradient_error <= REPLAY_TOLERANCE):
        return (f"its replay differs from an eager evaluation (loss by {loss_error:.2g}, "
                f"gradient by {gradient_error:.2g}, relative)")  # fmt: skip
    return None
