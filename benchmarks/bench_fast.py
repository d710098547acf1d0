#!/usr/bin/env python
"""Speed benchmark of fast style transfer (impasto.methods.fast): inference frames per second at
720p, 1080p and 4K, batch 1 and batched, and training throughput at 256 px.

Prints one JSON document on stdout (notes on stderr); ``--out FILE`` also writes it, rewritten
after every measurement. Every speed comes with a ratio against a reference measured in the same
run, on the same machine, with the same input: ``ratio_vs_reference = reference_ms / variant_ms``
(> 1: faster). Times are medians of interleaved rounds (reference, variant A, B, ... then the
next round in rotated order) so background load hits every variant alike.

Inference variants (``VARIANTS``; which run where is in ``DEFAULT_VARIANTS``):
- ``reference``: the plain path of the popular implementations: fp32, NCHW, ``F.instance_norm``.
- ``fast``: what ``impasto stylize --method fast`` runs (``Stylizer``): CPU fp32 channels_last;
  CUDA fp16 channels_last; instance norm as a one-group-per-channel group norm.
- ``fp16_channels_last_instance_norm`` (CUDA): fp16 channels_last with ``F.instance_norm``: the
  slow configuration reported for pytorch/examples' network; beside ``fast`` it isolates the
  instance norm's share. ``fp16_contiguous`` (CUDA) isolates the layout's share.
- ``fast_zero_padding``: ``fast`` with zero instead of reflection padding (padding's share).
- ``compiled``: ``fast`` under ``torch.compile`` (CUDA: mode "max-autotune", with CUDA graphs;
  on by default there; on the CPU with ``--variants ... compiled``).
Networks have random weights (speed does not depend on them) unless ``--model DIR`` is given.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import impasto
from impasto.methods import fast

# The sibling benchmarks/report.py, also when this file is loaded by path (tests do).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import to_json, write_atomic  # noqa: E402

RESOLUTIONS = {"720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}
DEFAULT_VARIANTS = {
    "cpu": ("reference", "fast", "fast_zero_padding"),
    "cuda": ("reference", "fast", "fp16_channels_last_instance_norm", "fp16_contiguous",
             "fast_zero_padding", "compiled"),
}  # fmt: skip
TARGETS = {"cuda_4k_fps": 60.0, "cpu_720p_fps": 5.0}
PUBLISHED = {
    "note": "measured elsewhere, not in this run: pytorch/examples fast_neural_style network "
    "on one H200",
    "fp32_ms": {"1080p": 16.7, "4k": 64.0},
    "fp16_channels_last_ms": {"1080p": 25.0, "4k": 107.0},
}


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class TorchInstanceNorm(nn.Module):
    """``F.instance_norm`` with the parameters of impasto's InstanceNorm (the popular path)."""

    def __init__(self, norm: fast.InstanceNorm) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight.to(x.dtype), bias=self.bias.to(x.dtype),
                               eps=self.eps)  # fmt: skip


def with_torch_instance_norm(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, fast.InstanceNorm):
            setattr(module, name, TorchInstanceNorm(child))
        else:
            with_torch_instance_norm(child)
    return module


def build(config: fast.NetworkConfig, state: dict | None) -> fast.TransformNet:
    torch.manual_seed(0)
    network = fast.TransformNet(config)
    if state is not None:
        network.load_state_dict(state)
    return network.eval()


def make_runner(variant: str, config: fast.NetworkConfig, state, device: torch.device):
    """A function images -> images for one variant, and its description."""
    half = torch.float16 if device.type == "cuda" else torch.float32
    if variant == "reference":
        network = with_torch_instance_norm(build(config, state)).to(device)
        dtype, layout = torch.float32, torch.contiguous_format
        described = "fp32, NCHW, F.instance_norm"
    elif variant in ("fast", "compiled", "fast_zero_padding"):
        net_config = config
        if variant == "fast_zero_padding":
            net_config = fast.NetworkConfig(
                config.channels, config.residual_blocks, "zeros", config.edge_kernel
            )
            state = None if config.padding != "zeros" else state
        model = fast.FastModel(build(net_config, state), {}, Path("benchmark"))
        stylizer = fast.Stylizer(model, device.type)
        network, dtype, layout = stylizer.network, stylizer.dtype, stylizer.memory_format
        described = (
            f"impasto Stylizer: {str(dtype).removeprefix('torch.')}, "
            + ("channels_last" if layout == torch.channels_last else "NCHW")
            + ", group-norm IN"
        )
        if variant == "compiled":
            mode = "max-autotune" if device.type == "cuda" else None
            network = torch.compile(network, mode=mode, dynamic=False)
            described += f", torch.compile {mode or 'default'}"
        if variant == "fast_zero_padding":
            described += ", zero padding"
    elif variant == "fp16_channels_last_instance_norm":
        network = with_torch_instance_norm(build(config, state)).to(device, half)
        network = network.to(memory_format=torch.channels_last)
        dtype, layout = half, torch.channels_last
        described = "fp16, channels_last, F.instance_norm"
    elif variant == "fp16_contiguous":
        network = build(config, state).to(device, half)
        dtype, layout = half, torch.contiguous_format
        described = "fp16, NCHW, group-norm IN"
    else:
        raise ValueError(variant)

    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return network(images.to(dtype).contiguous(memory_format=layout))

    return run, described


def timed(run, images: torch.Tensor, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(images)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def bench_inference(args, device: torch.device, config, state, result: dict, save) -> None:
    variants = args.variants or DEFAULT_VARIANTS[device.type]
    for resolution in args.resolutions:
        height, width = RESOLUTIONS[resolution]
        for batch in args.batches:
            key = f"{resolution}_batch{batch}"
            note(f"inference {key} on {device.type}: {', '.join(variants)}")
            images = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(1))
            images = images.to(device)
            runners, entry = {}, {"resolution": resolution, "batch": batch, "variants": {}}
            for variant in variants:
                try:
                    run, described = make_runner(variant, config, state, device)
                    warm = time.perf_counter()
                    for _ in range(args.warmup):
                        timed(run, images, device)
                    runners[variant] = run
                    entry["variants"][variant] = {
                        "what": described,
                        "warmup_s": round(time.perf_counter() - warm, 2),
                    }
                except Exception as error:  # a variant that cannot run is reported, not fatal
                    entry["variants"][variant] = {"error": f"{type(error).__name__}: {error}"}
            samples = {variant: [] for variant in runners}
            order = list(runners)
            for round_index in range(args.repeats):
                for variant in (
                    order[round_index % len(order) :] + order[: round_index % len(order)]
                ):
                    samples[variant].append(timed(runners[variant], images, device))
            reference = statistics.median(samples["reference"]) if "reference" in samples else None
            for variant, values in samples.items():
                median = statistics.median(values)
                entry["variants"][variant].update({
                    "median_ms": round(median, 2), "samples_ms": [round(v, 2) for v in values],
                    "fps": round(batch * 1000 / median, 2),
                    "ratio_vs_reference": round(reference / median, 3) if reference else None,
                })  # fmt: skip
            result["inference"].append(entry)
            save()
            del runners
            if device.type == "cuda":
                torch.cuda.empty_cache()


def bench_training(args, device: torch.device, result: dict, save) -> None:
    """Images per second of ``fast.train``'s step (forward, losses, backward, Adam) at 256 px."""
    from impasto.backbones import load_backbone
    from impasto.photos import PhotoSet

    note(f"training throughput at {args.train_size} px, batch {args.train_batch}")
    photos = PhotoSet(Path("random"), args.train_size, [
        (torch.rand(3, args.train_size + 32, args.train_size + 64) * 255).to(torch.uint8)
        for _ in range(8)], [f"{i}" for i in range(8)])  # fmt: skip
    style = torch.rand(1, 3, args.train_size, args.train_size)
    backbone = load_backbone(args.backbone, allow_download=False)
    entry = {"size": args.train_size, "batch": args.train_batch, "backbone": backbone.name}
    timings = {}
    for steps in (args.warmup + 1, args.warmup + 1 + args.train_steps):
        config = fast.FastTrainConfig(size=args.train_size, batch=args.train_batch, steps=steps,
                                      backbone=backbone.name, device=device.type,
                                      checkpoint_every=10**6, preview_every=0)  # fmt: skip
        Path(args.scratch).mkdir(parents=True, exist_ok=True)
        folder = Path(args.scratch) / f"train{steps}"
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        fast.train(style, photos, folder, config, backbone=backbone)
        timings[steps] = time.perf_counter() - started
    seconds = timings[args.warmup + 1 + args.train_steps] - timings[args.warmup + 1]
    entry.update({"timed_steps": args.train_steps, "seconds": round(seconds, 2),
                  "images_per_second": round(args.train_steps * args.train_batch / seconds, 2),
                  "method": "difference of two runs (setup cancels out)"})  # fmt: skip
    result["training"] = entry
    save()


def machine(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "impasto": impasto.__version__, "threads": torch.get_num_threads()}  # fmt: skip
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu"] = platform.processor()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--resolutions", nargs="+", default=list(RESOLUTIONS),
                        choices=list(RESOLUTIONS))  # fmt: skip
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--variants", nargs="+")
    parser.add_argument("--channels", type=int, default=32, help="network width (paper: 32)")
    parser.add_argument("--residual-blocks", type=int, default=5)
    parser.add_argument("--edge-kernel", type=int, default=9, choices=fast.EDGE_KERNEL_CHOICES)
    parser.add_argument("--model", help="a model folder (default: random weights)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--scratch", default="/tmp/impasto-bench-fast")
    parser.add_argument("--out")
    args = parser.parse_args()

    from impasto.devices import configure_for_speed, resolve_device

    device = resolve_device(args.device)
    configure_for_speed(device)
    if args.model:
        loaded = fast.load_model(args.model)
        config, state = loaded.network.config, loaded.network.state_dict()
    else:
        config = fast.NetworkConfig(
            args.channels, args.residual_blocks, "reflect", args.edge_kernel
        )
        state = None
    result = {
        "benchmark": "fast style transfer", "date": datetime.datetime.now().isoformat(),
        "machine": machine(device), "device": device.type,
        "network": {"channels": config.channels, "residual_blocks": config.residual_blocks,
                    "padding": config.padding, "edge_kernel": config.edge_kernel,
                    "weights": args.model or "random (speed only)"},
        "targets": TARGETS, "published_reference": PUBLISHED, "inference": [],
    }  # fmt: skip

    def save() -> None:
        if args.out:
            write_atomic(args.out, to_json(result) + "\n")

    try:
        bench_inference(args, device, config, state, result, save)
        if not args.no_training:
            bench_training(args, device, result, save)
    except KeyboardInterrupt:
        result["interrupted"] = True
    except Exception:
        result["error"] = traceback.format_exc()
    save()
    print(to_json(result))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
