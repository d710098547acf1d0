"""The loss evaluation replayed from a CUDA graph (impasto.cuda_graphs, Gatys' --cuda-graph).

On the CPU the graph is played by stand-ins with a CUDA graph's contract: a capture records the
step and computes nothing (its output tensors hold nothing useful until a replay), each replay
writes its results into those same tensors. A faithful stand-in must leave every result
bit-identical to the eager run; a broken one must be caught by the check against an eager
evaluation. The last test runs the real torch.cuda graphs where a GPU is present.
"""

import contextlib
from unittest import mock

import pytest
import torch
from PIL import Image

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


@contextlib.contextmanager
def waits_refused():
    """What a capture (and CUDA's sync debug mode "error") does to a step that reads a tensor's
    value on the host: it raises."""

    def refuse(*args, **kwargs):
        raise RuntimeError("called a synchronizing CUDA operation")

    with contextlib.ExitStack() as stack:
        for name in ("item", "__float__", "tolist"):
            stack.enter_context(mock.patch.object(torch.Tensor, name, refuse))
        yield


class ReplayingGraphs:
    """A CUDA graph's contract on the CPU: capture runs the step (refusing waits, as a capture
    does) to learn its outputs and then blanks them (a capture computes nothing); replay
    recomputes into those same tensors, from the same image memory."""

    def __init__(self) -> None:
        self.replays = 0
        self.captures = 0
        self.broken = None
        self.image = None  # when known: a replay leaves its .grad as the optimiser left it

    def side_stream(self):
        return contextlib.nullcontext()

    def waits_refused(self):
        return waits_refused()

    def capture(self, run):
        self.captures += 1
        with waits_refused():
            outputs = run()
        for tensor in tensors_of(outputs):
            tensor.detach().fill_(float("nan"))
        address = tensors_of(outputs)[-1].data_ptr()

        def replay():
            self.replays += 1
            fresh = tensors_of(run())
            with torch.no_grad():
                for static, new in zip(tensors_of(outputs), fresh, strict=True):
                    static.copy_(new)
            if self.image is not None:
                self.image.grad = None  # as optimise's closure left it: a replay runs no Python
            assert tensors_of(outputs)[-1].data_ptr() == address

        return outputs, replay


class ForgetfulGraphs(ReplayingGraphs):
    """A broken graph: its replays compute nothing."""

    def capture(self, run):
        outputs, _ = super().capture(run)
        return outputs, lambda: None


class FailingGraphs(ReplayingGraphs):
    """A capture that fails once the step has run (its gradient already set)."""

    def capture(self, run):
        run()
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


def optimised(objective, start, steps, graphs=None, optimizer="lbfgs"):
    """(the image after ``steps`` evaluations, the total of each, the evaluation)."""
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

    optimise(image, evaluate, steps, budget, optimizer=optimizer)
    return image.detach(), totals, evaluation


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_faithful_graph_changes_no_result_and_replays_after_the_warmup(tiny, pictures,
                                                                         optimizer):  # fmt: skip
    objective = objective_on(tiny, *pictures)
    eager, eager_totals, _ = optimised(objective, pictures[0], 12, optimizer=optimizer)
    graphs = ReplayingGraphs()
    replayed, totals, evaluation = optimised(objective, pictures[0], 12, graphs, optimizer)
    assert evaluation.fallback is None and graphs.broken is None
    assert totals == eager_totals
    assert torch.equal(replayed, eager)
    # the capture's own evaluation is its first replay; every later one is a replay
    assert graphs.captures == 1
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
    assert graphs.broken == evaluation.fallback  # and the next scale will not try again
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


def run_gatys(tiny, pictures, graphs, monkeypatch, notes, **options):
    monkeypatch.setattr(gatys, "graphs_for", lambda config, device: graphs)
    options = {"size": 48, "steps": 12, "scales": 2, "backbone": "tiny", "device": "cpu",
               "cuda_graph": True, **options}  # fmt: skip
    return stylize(pictures[0], [pictures[1]], GatysConfig(**options), backbone=tiny,
                   notify=notes.append)  # fmt: skip


def test_gatys_through_a_faithful_graph_gives_the_eager_result(tiny, pictures, monkeypatch):
    notes = []
    eager = run_gatys(tiny, pictures, None, monkeypatch, notes)
    graphs = ReplayingGraphs()
    replayed = run_gatys(tiny, pictures, graphs, monkeypatch, notes)
    assert notes == []
    assert graphs.captures == 2  # one a scale: 12 and 10 evaluations
    assert replayed.history == eager.history
    assert torch.equal(replayed.image, eager.image)


def test_a_scale_too_short_for_a_capture_runs_eagerly(tiny, pictures, monkeypatch):
    graphs = ReplayingGraphs()
    steps = cuda_graphs.MIN_GRAPHED_EVALUATIONS - 1
    run_gatys(tiny, pictures, graphs, monkeypatch, [], steps=steps, scales=1)
    assert graphs.captures == 0
    run_gatys(tiny, pictures, graphs, monkeypatch, [], steps=steps + 1, scales=1)
    assert graphs.captures == 1


def test_gatys_says_once_that_its_graph_is_off(tiny, pictures, monkeypatch):
    notes = []
    eager = run_gatys(tiny, pictures, None, monkeypatch, notes)
    graphs = ForgetfulGraphs()
    result = run_gatys(tiny, pictures, graphs, monkeypatch, notes)
    assert graphs.captures == 1  # the second scale does not try again
    assert len(notes) == 1
    assert notes[0].startswith("--cuda-graph: off from scale 1/2")
    assert "its replay differs from an eager evaluation" in notes[0]
    assert torch.equal(result.image, eager.image)


def test_a_step_that_waits_for_the_device_is_never_captured(tiny, pictures, monkeypatch,
                                                            tmp_path):  # fmt: skip
    # --mask's style loss reads each region's share on the host: no capture can hold it
    mask = tmp_path / "mask.png"
    Image.new("L", (60, 40), 255).save(mask)
    notes = []
    eager = run_gatys(tiny, pictures, None, monkeypatch, notes, mask=[str(mask)])
    graphs = ReplayingGraphs()
    result = run_gatys(tiny, pictures, graphs, monkeypatch, notes, mask=[str(mask)])
    assert graphs.captures == 0
    assert len(notes) == 1 and "the step waits for the GPU" in notes[0]
    assert result.history == eager.history
    assert torch.equal(result.image, eager.image)


def test_graphs_only_where_they_can_run():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert gatys.graphs_for(GatysConfig(cuda_graph=True), cpu) is None
    assert gatys.graphs_for(GatysConfig(cuda_graph=False), cuda) is None
    assert gatys.graphs_for(GatysConfig(cuda_graph=True, photorealistic=True), cuda) is None
    assert gatys.graphs_for(GatysConfig(cuda_graph=True, compile=True), cuda) is None
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gatys_on_cuda_with_its_graph_matches_the_eager_run():
    # the production path: bf16 autocast, channels_last, cuDNN's autotuning, two scales
    backbone, notes = load_backbone("tiny"), []
    content, style = torch.rand(1, 3, 96, 128), torch.rand(1, 3, 64, 64)
    runs = [stylize(content, [style], GatysConfig(size=128, steps=30, scales=2, device="cuda",
                                                  backbone="tiny", cuda_graph=graph),
                    backbone=backbone, notify=notes.append)
            for graph in (False, True)]  # fmt: skip
    assert notes == []
    eager, graphed = runs
    assert graphed.history[-1]["total"] == pytest.approx(eager.history[-1]["total"], rel=0.05)
    assert (graphed.image - eager.image).abs().mean() < 0.02
