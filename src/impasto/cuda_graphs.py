"""One loss evaluation (forward and backward) captured in a CUDA graph and replayed: the step of
the methods that optimise pixels, for networks whose step is bound by kernel launches rather
than by arithmetic (EfficientNet-Lite's step costs about the same at any size on a large GPU:
hundreds of small kernels, each launched from Python).

How (torch.cuda.CUDAGraph, the "whole network capture" recipe of PyTorch's CUDA semantics
notes): the optimised image is a tensor that L-BFGS and Adam update in place, so its address
never changes within a scale. The first WARMUP_EVALUATIONS evaluations run eagerly on a side
stream (cuDNN picks its algorithms, autograd sets itself up), the last of them with every
operation that waits for the GPU refused, since a capture cannot hold one (e.g. a float() of a
tensor in the loss). The next evaluation captures the forward and backward once, replays the
graph, and checks the replay against an eager evaluation of the same image. From then on every
evaluation is one replay: the loss terms and the gradient are written into the same tensors
each time (``image.grad`` is pointed back at the graph's own gradient after each replay, since
optimisers set it to None between evaluations).

Safety: a step that waits for the GPU, a capture that fails, or a replay that differs from the
eager evaluation beyond REPLAY_TOLERANCE turns the graphs off for the rest of the run
(``CudaGraphs.broken`` says why; the method reports it in one line): a failed capture can leave
memory behind in torch's allocator, so it is not tried again. A scale of fewer than
MIN_GRAPHED_EVALUATIONS runs eagerly (its capture would not pay off). Autocast's weight cache
is off inside a capture (``impasto.devices.autocast(..., cache=False)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

Terms = dict[str, torch.Tensor]
Objective = Callable[[torch.Tensor], tuple[torch.Tensor, Terms]]

WARMUP_EVALUATIONS = 3  # eager evaluations before the capture
MIN_GRAPHED_EVALUATIONS = WARMUP_EVALUATIONS + 6  # fewer: the scale runs eagerly
REPLAY_TOLERANCE = 1e-3  # relative difference allowed between a replay and an eager evaluation


def forward_backward(objective: Objective, image: torch.Tensor) -> tuple[torch.Tensor, Terms]:
    """The loss terms of ``image`` (their ``total`` among them), detached, with the gradient of
    the total in ``image.grad``."""
    image.grad = None
    total, terms = objective(image)
    total.backward()
    return total.detach(), {name: value.detach() for name, value in terms.items()}


class CudaGraphs:
    """torch.cuda's graphs behind the three calls GraphedEvaluation makes, for one run (tests
    pass a stand-in that runs on the CPU). ``broken``: why they are off for the rest of it."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream: torch.cuda.Stream | None = None
        self.broken: str | None = None

    @contextlib.contextmanager
    def side_stream(self):
        """Run the block on a side stream, ordered after and before the current stream's work."""
        if self.stream is None:
            self.stream = torch.cuda.Stream(self.device)
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        try:
            with torch.cuda.stream(self.stream):
                yield
        finally:
            current.wait_stream(self.stream)

    @contextlib.contextmanager
    def waits_refused(self):
        """Inside the block, an operation that waits for the GPU raises (as in a capture)."""
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(previous)

    def capture(self, run: Callable[[], tuple]) -> tuple[tuple, Callable[[], None]]:
        """(the tensors ``run`` returned while captured, a function that replays it: each
        replay writes its results into those same tensors)."""
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.current_stream(self.device)
        try:
            with torch.cuda.graph(graph):
                outputs = run()
        finally:  # a failed capture can leave its own stream current
            torch.cuda.set_stream(stream)
        return outputs, graph.replay


class GraphedEvaluation:
    """``forward_backward(objective, image)`` for one scale, replayed from a CUDA graph after
    WARMUP_EVALUATIONS eager ones (see the module's notes). Call it once per evaluation;
    ``fallback`` says why it stayed eager, if it did."""

    def __init__(self, objective: Objective, image: torch.Tensor, graphs) -> None:
        self.objective, self.image, self.graphs = objective, image, graphs
        self.eager_left = WARMUP_EVALUATIONS
        self.replay: Callable[[], None] | None = None
        self.outputs: tuple[torch.Tensor, Terms] | None = None
        self.gradient: torch.Tensor | None = None
        self.fallback: str | None = graphs.broken

    def __call__(self) -> tuple[torch.Tensor, Terms]:
        if self.replay is not None:
            self.replay()
            self.image.grad = self.gradient
            return self.outputs
        if self.fallback is not None:
            return forward_backward(self.objective, self.image)
        self.eager_left -= 1
        if self.eager_left > 0:
            with self.graphs.side_stream():
                return forward_backward(self.objective, self.image)
        if self.eager_left == 0:
            return self._last_warmup()
        return self._capture()

    def _give_up(self, why: str) -> None:
        self.fallback = self.graphs.broken = why

    def _last_warmup(self) -> tuple[torch.Tensor, Terms]:
        try:
            with self.graphs.side_stream(), self.graphs.waits_refused():
                return forward_backward(self.objective, self.image)
        except RuntimeError as error:
            self._give_up(f"the step waits for the GPU, which a capture cannot hold ({error})")
        return forward_backward(self.objective, self.image)

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
            cause = f"; after: {error.__context__}" if error.__context__ else ""
            self._give_up(f"the capture failed ({type(error).__name__}: {error}{cause})")
        else:
            why = replay_disagrees(eager, eager_gradient, total, gradient)
            if why is None:
                self.replay, self.outputs, self.gradient = replay, (total, terms), gradient
                self.image.grad = gradient
                return total, terms
            self._give_up(why)
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
