"""Export a trained image-to-image network to ONNX, for onnxruntime, browsers and mobile runtimes
(used by the methods whose models export: ``impasto export`` reads the method table).

A fast model's graph takes ``image``: float32 (N, 3, H, W) in [0, 1] and returns ``stylized`` of
the same shape; N, H and W are dynamic. An arbitrary-style method's graph (AdaIN, WCT) takes
``content`` (1, 3, H, W), ``style`` (1, 3, Hs, Ws) and ``alpha`` (a float32 of shape (1,)),
each size dynamic, and returns ``stylized`` (1, 3, H, W). Graphs are produced by
``torch.onnx.export`` (the torch.export-based exporter, which needs the ``onnx`` and
``onnxscript`` packages: ``pip install impasto[export]``) and written atomically.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .files import atomic_path, check_writable

EXPORT_FORMATS: tuple[str, ...] = ("onnx",)
DEFAULT_OPSET = 18
MIN_OPSET = 18  # the exporter writes nonsense below what the network's operators need
TRACE_SIZE = 64  # the example input's side; any size works after export


@dataclass(frozen=True)
class GraphInput:
    """One input of an exported graph: its ONNX name, the forward argument it feeds, its
    example shape, and which dimensions are dynamic ({index: name})."""

    name: str
    argument: str
    shape: tuple[int, ...]
    dims: tuple[tuple[int, str], ...] = ()
    seed: int = 0

    def example(self):
        import torch

        return torch.rand(self.shape, generator=torch.Generator().manual_seed(self.seed))

    def dynamic(self) -> dict:
        import torch

        sizes = {"batch": (1, 1024)}
        return {index: torch.export.Dim(f"{self.name}_{label}" if label != "batch" else label,
                                        min=sizes.get(label, (16, 16384))[0],
                                        max=sizes.get(label, (16, 16384))[1])
                for index, label in self.dims}  # fmt: skip


def image_input(name: str, argument: str = "images", batch: bool = False,
                seed: int = 0) -> GraphInput:  # fmt: skip
    """An image input (N or 1, 3, H, W) with dynamic height and width (and batch)."""
    dims = ((0, "batch"),) if batch else ()
    return GraphInput(name, argument, (1, 3, TRACE_SIZE, TRACE_SIZE),
                      (*dims, (2, "height"), (3, "width")), seed)  # fmt: skip


def export_onnx(network, path: str | os.PathLike, opset: int = DEFAULT_OPSET,
                inputs: tuple[GraphInput, ...] | None = None) -> Path:  # fmt: skip
    """Write ``network`` (a torch module) as an ONNX file: by default images -> images with
    dynamic batch, height and width; ``inputs``: the graph's inputs in the order ``network``
    takes them, each with its example and dynamic dimensions."""
    import torch

    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise InputError(
            f"ONNX export needs the '{error.name}' package: pip install 'impasto[export]'"
        ) from error
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise InputError(f"--opset must be a whole number of at least {MIN_OPSET}, got {opset!r}")
    target = Path(path)
    if target.suffix.lower() != ".onnx":
        raise InputError(f"ONNX output must end in .onnx, got '{target.name}'")
    check_writable(target)  # a folder, a read-only or full disk: found before the slow export
    from .nn.layers import set_kernels

    # A copy (a live Stylizer may hold this network in fp16 channels_last on a GPU), in float32
    # NCHW with the standard operators (InstanceNormalization-like ops, Pad reflect).
    network = copy.deepcopy(network).float().cpu().eval()
    network = set_kernels(network.to(memory_format=torch.contiguous_format))
    if inputs is None:
        inputs = (image_input("image", batch=True),)
    examples = tuple(graph_input.example() for graph_input in inputs)
    dynamic = {graph_input.argument: graph_input.dynamic() for graph_input in inputs}
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # e.g. "torchvision is not installed": noise, not news
    try:
        # The exporter narrates every stage on stdout; the library stays silent.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                network, examples, dynamo=True, opset_version=opset,
                input_names=[graph_input.name for graph_input in inputs],
                output_names=["stylized"], dynamic_shapes=dynamic, external_data=False,
            )  # fmt: skip
            written = next(
                (entry.version for entry in program.model_proto.opset_import if not entry.domain),
                None,
            )
            if written != opset:  # e.g. 999: the exporter quietly writes its default instead
                raise InputError(
                    f"--opset {opset}: this exporter cannot write it (it wrote {written})"
                )
            with atomic_path(target) as partial:
                program.save(str(partial))
    finally:
        onnx_log.setLevel(level)
    return target
