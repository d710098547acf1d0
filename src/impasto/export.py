"""Export a trained image-to-image network to ONNX, for onnxruntime, browsers and mobile runtimes
(used by the methods whose models export: ``impasto export`` reads the method table).

The graph takes ``image``: float32 (N, 3, H, W) in [0, 1] and returns ``stylized`` of the same
shape; N, H and W are dynamic. It is produced by ``torch.onnx.export`` (the torch.export-based
exporter, which needs the ``onnx`` and ``onnxscript`` packages: ``pip install impasto[export]``)
and written atomically.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from pathlib import Path

from .errors import InputError
from .files import atomic_path, check_writable

EXPORT_FORMATS: tuple[str, ...] = ("onnx",)
DEFAULT_OPSET = 18
MIN_OPSET = 18  # the exporter writes nonsense below what the network's operators need
TRACE_SIZE = 64  # the example input's side; any size works after export


def export_onnx(network, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``network`` (a torch module, images -> images) as an ONNX file with dynamic batch,
    height and width."""
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
    example = torch.rand(1, 3, TRACE_SIZE, TRACE_SIZE, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height", min=16, max=16384)
    width = torch.export.Dim("width", min=16, max=16384)
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # e.g. "torchvision is not installed": noise, not news
    try:
        # The exporter narrates every stage on stdout; the library stays silent.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                network, (example,), dynamo=True, opset_version=opset,
                input_names=["image"], output_names=["stylized"],
                dynamic_shapes={"images": {0: batch, 2: height, 3: width}},
                external_data=False,
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
