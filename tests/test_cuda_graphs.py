"""The loss evaluation replayed from a CUDA graph (impasto.cuda_graphs, Gatys' --cuda-graph).

On the CPU the graph is played by stand-ins with a CUDA graph's contract: a capture records the
step and computes nothing (its output tensors hold nothing useful until a replay), each replay
writes its results into those same tensors. A faithful stand-in must leave every result
bit-identical to the eager run; a broken one must be caught by the check against an eager
evaluation. The last test runs the real torch.cuda graphs where a GPU is present.
"""

import contextlib

import pytest
import torch

from impasto import cuda_graphs
from impasto.backbones import load_backbone
from impasto.cuda_graphs import GraphedEvaluation, forward_backward
from impasto.methods import gatys
from impasto.methods.gatys import GatysConfig, stylize
from impasto.optimisation import EvaluationBudget, optimise


def tensors_of(outputs):
    """The tensors of (total, terms, gradient), in a fixed order."""
    total, terms, gradient = outputs
    return [total, *terms.values(), gradient]


class ReplayingGraphs:
    """A CUDA graph's contract on the CPU: capture runs the step to learn its outputs and then
    blanks them (a capture computes nothing); replay recomputes into those same tensors."""

    def __init__(self) -> None:
        self.replays = 0
        self.image = None  # when known: a replay leaves its .grad as the optimiser left it

    def side_stream(self):
        return contextlib.nullcontext()

    def capture(self, run):
        outputs = run()
        for tensor in tensors_of(outputs):
            tensor.detach().fill_(float("nan"))

        def replay():
            self.replays += 1
            fresh = tensors_of(run())
            with torch.no_grad():
                for static, new in zip(tensors_of(outputs), fresh, strict=True):
                    static.copy_(new)
            if self.image is not None:
                self.image.grad = None  # as optimise's closure left it: a replay runs no Python

        return outputs, replay


class ForgetfulGraphs(ReplayingGraphs):
    """A broken graph: its replays compute nothing."""

    def capture(self, run):
        outputs, _ = super().capture(run)
        return outputs, lambda: None


class FailingGraphs(ReplayingGraphs):
    def capture(self, run):
        raise RuntimeError("operation not permitted when stream is capturing")


def objective_on(backbone, content, style):
    """A small perceptual objective of the real method at 40x60 px."""
    config = GatysConfig(backbone="tiny", device="cpu")
    layers = backbone.defaults
    return gatys.Objective(backbone, backbone, content, [style], [1.0], config,
                           layers.content_layers, dict(layers.style_layers),
                           contextlib.nullcontext, False)  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    return load_backbone("tiny")


@pytest.fixture(scope="module")
def pictures():
    generator = torch.Generator().manual_seed(3)
    return torch.rand(1, 3, 40, 60, generator=generator), torch.rand(
        1, 3, 36, 36, generator=generator
    )


def optimised(objective, start, steps, graphs=None):
    """(the image after ``steps`` L-BFGS evaluations, the total of each, the evaluation)."""
    image = start.clone().requires_grad_(True)
    budget = EvaluationBudget(steps)
    evaluation = GraphedEvaluation(objective, image, graphs) if graphs else None
    if graphs:
        graphs.image = image
    totals = []

    def evaluate():
        budget.spend()
        total, terms = evaluation() if evaluation else forward_backward(objective, image)
        totals.append(float(total))
        budget.offer(float(total), image)
        return total

    optimise(image, evaluate, steps, budget)
    return image.detach(), totals, evaluation


def test_a_faithful_graph_changes_no_result_and_replays_after_the_warmup(tiny, pictures):
    objective = objective_on(tiny, *pictures)
    eager, eager_totals, _ = optimised(objective, pictures[0], 12)
    graphs = ReplayingGraphs()
    replayed, totals, evaluation = optimised(objective, pictures[0], 12, graphs)
    assert evaluation.fallback is None
    assert totals == eager_totals
    assert torch.equal(replayed, eager)
    # the capture's own evaluation is its first replay; every later one is a replay
    assert graphs.replays == 12 - cuda_graphs.WARMUP_EVALUATIONS
    assert eager_totals[-1] < eager_totals[0]


@pytest.mark.parametrize(("graphs", "why"), [
    (ForgetfulGraphs(), "its replay differs from an eager evaluation"),
    (FailingGraphs(), "the capture failed (RuntimeError: operation not permitted"),
])  # fmt: skip
def test_a_broken_graph_is_caught_and_the_run_stays_eager(tiny, pictures, graphs, why):
    objective = objective_on(tiny, *pictures)
    eager, eager_totals, _ = optimised(objective, pictures[0], 10)
    result, totals, evaluation = optimised(objective, pictures[0], 10, graphs)
    assert evaluation.fallback.startswith(why)
    assert totals == eager_totals
    assert torch.equal(result, eager)


def test_the_check_names_how_far_a_replay_is_off():
    eager = (torch.tensor(2.0), {})
    gradient = torch.ones(4)
    assert cuda_graphs.replay_disagrees(eager, gradient, torch.tensor(2.0), gradient.clone()) \
        is None  # fmt: skip
    off = cuda_graphs.replay_disagrees(eager, gradient, torch.tensor(2.1), gradient.clone())
    assert "loss by 0.05" in off
    off = cuda_graphs.replay_disagrees(eager, gradient, torch.tensor(2.0), gradient * 1.5)
    assert "gradient by 0.5" in off
    assert "no gradient" in cuda_graphs.replay_disagrees(eager, gradient, eager[0], None)


def run_gatys(tiny, pictures, graphs, monkeypatch, notes):
    monkeypatch.setattr(gatys, "graphs_for", lambda config, device: graphs)
    config = GatysConfig(size=48, steps=8, scales=2, backbone="tiny", device="cpu",
                         cuda_graph=True)  # fmt: skip
    return stylize(pictures[0], [pictures[1]], config, backbone=tiny, notify=notes.append)


def test_gatys_through_a_faithful_graph_gives_the_eager_result(tiny, pictures, monkeypatch):
    notes = []
    eager = run_gatys(tiny, pictures, None, monkeypatch, notes)
    graphs = ReplayingGraphs()
    replayed = run_gatys(tiny, pictures, graphs, monkeypatch, notes)
    assert notes == []
    assert graphs.replays > 0
    assert replayed.history == eager.history
    assert torch.equal(replayed.image, eager.image)


def test_gatys_says_which_scale_ran_without_its_graph(tiny, pictures, monkeypatch):
    notes = []
    eager = run_gatys(tiny, pictures, None, monkeypatch, notes)
    result = run_gatys(tiny, pictures, ForgetfulGraphs(), monkeypatch, notes)
    assert len(notes) == 2  # one line per scale
    assert notes[0].startswith("--cuda-graph: scale 1/2")
    assert "its replay differs from an eager evaluation" in notes[0]
    assert torch.equal(result.image, eager.image)


def test_graphs_only_where_they_can_run():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert gatys.graphs_for(GatysConfig(cuda_graph=True), cpu) is None
    assert gatys.graphs_for(GatysConfig(cuda_graph=False), cuda) is None
    assert gatys.graphs_for(GatysConfig(cuda_graph=True, photorealistic=True), cuda) is None
    assert isinstance(gatys.graphs_for(GatysConfig(cuda_graph=True), cuda), cuda_graphs.CudaGraphs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_real_cuda_graph_replays_the_eager_step():
    backbone = load_backbone("tiny").cuda()
    content, style = (p.cuda() for p in (torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 64)))
    objective = objective_on(backbone, content, style)
    eager, eager_totals, _ = optimised(objective, content, 12)
    graphs = cuda_graphs.CudaGraphs(torch.device("cuda"))
    replayed, totals, evaluation = optimised(objective, content, 12, graphs)
    assert evaluation.fallback is None and evaluation.replay is not None
    assert totals == pytest.approx(eager_totals, rel=1e-3)
    assert torch.allclose(replayed, eager, atol=1e-3)
