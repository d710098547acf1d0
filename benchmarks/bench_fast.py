#!/usr/bin/env python
"""Speed benchmark of fast style transfer (impasto.methods.fast): inference frames per second at
720p, 1080p and 4K, batch 1 and batched, and training throughput at 256 px.

Prints one JSON document on stdout (notes on stderr); ``--out FILE`` also writes it, rewritten
after every measurement. Every speed comes with a ratio against a reference measured in the same
run, on the same machine, with the same input: ``ratio_vs_reference = reference_ms / variant_ms``
(> 1: faster). Times are medians of interleaved rounds (reference, variant A, B, ... then the
next round in rotated order) so background load hits every variant alike.

Inference variants (``VARIANT_KERNELS``; which run where is in ``DEFAULT_VARIANTS``):
- ``reference``: the plain path of the popular implementations: fp32, NCHW, ``F.instance_norm``,
  ``F.pad`` reflection padding.
- ``fast``: what ``impasto stylize --method fast`` runs (``Stylizer``): CPU fp32 channels_last
  with the fused group norm; CUDA fp16 channels_last with the layout-keeping norm and padding
  kernels (``layers.inference_kernels``).
- ``fp16_channels_last_torch`` (CUDA): fp16 channels_last with torch's own kernels
  (``F.instance_norm``, ``F.pad``): the slow configuration reported for pytorch/examples'
  network. ``fp16_channels_last_group_norm``: the same with the group norm (its CUDA kernel
  also converts to NCHW). ``fp16_contiguous``: fp16 NCHW (the layout's share).
- ``fast_var_mean`` (CUDA): ``fast`` with the var_mean norm at every batch size.
- ``fast_aligned`` / ``compiled_unaligned``: ``fast`` with, ``compiled`` without, the RGB
  convolutions padded to 8 channels (``set_kernels(align=8)``; CUDA's default only compiled).
- ``fast_zero_padding``: ``fast`` with zero instead of reflection padding (padding's share).
- ``compiled``: the Stylizer with ``compile=True`` (``torch.compile``, default mode, static
  shapes; dynamo is reset before each, so no run meets its recompile limit).
Every variant's output is compared with the reference's (``max_abs_diff_vs_reference``, on the
[0, 1] pixel scale). Networks have random weights (speed does not depend on them) unless
``--model DIR`` is given. ``kernels`` (CUDA, or ``--kernels``) times single norm, padding and
upsampling kernels on one channels_last activation and records the layout each returns: the
answer to why fp16 channels_last was slower than fp32.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shutil
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
from impasto.nn import layers, transform_net

# The sibling benchmarks/report.py, also when this file is loaded by path (tests do).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import to_json, write_atomic  # noqa: E402

RESOLUTIONS = {"720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}
DEFAULT_VARIANTS = {
    "cpu": ("reference", "fast", "fast_zero_padding"),
    "cuda": ("reference", "fp16_channels_last_torch", "fp16_channels_last_group_norm",
             "fp16_contiguous", "fast", "fast_var_mean", "fast_zero_padding", "compiled"),
}  # fmt: skip
STYLIZER_VARIANTS = ("fast", "fast_aligned", "fast_var_mean", "fast_zero_padding", "compiled",
                     "compiled_unaligned")  # fmt: skip
# variant: (dtype on CUDA or None for the Stylizer's, channels_last, norm kernel, pad kernel)
TORCH_KERNEL_VARIANTS = {
    "reference": ("fp32", False, "instance_norm", "torch"),
    "fp16_channels_last_torch": ("fp16", True, "instance_norm", "torch"),
    "fp16_channels_last_group_norm": ("fp16", True, "group_norm", "torch"),
    "fp16_contiguous": ("fp16", False, "group_norm", "torch"),
}
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

    def __init__(self, norm: layers.InstanceNorm) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight.to(x.dtype), bias=self.bias.to(x.dtype),
                               eps=self.eps)  # fmt: skip


def with_torch_instance_norm(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, layers.InstanceNorm):
            setattr(module, name, TorchInstanceNorm(child))
        else:
            with_torch_instance_norm(child)
    return module


def build(config: transform_net.NetworkConfig, state: dict | None) -> transform_net.TransformNet:
    torch.manual_seed(0)
    network = transform_net.TransformNet(config)
    if state is not None:
        network.load_state_dict(state)
    return network.eval()


def make_runner(variant: str, config: transform_net.NetworkConfig, state, device: torch.device):
    """A function images -> images for one variant, and its description."""
    if variant in TORCH_KERNEL_VARIANTS:
        precision, channels_last, norm, pad = TORCH_KERNEL_VARIANTS[variant]
        dtype = torch.float16 if precision == "fp16" and device.type == "cuda" else torch.float32
        network = build(config, state)
        if norm == "instance_norm":
            network = with_torch_instance_norm(network)
        else:
            layers.set_kernels(network, norm, pad)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        network = network.to(device, dtype).to(memory_format=layout)
        described = (f"{str(dtype).removeprefix('torch.')}, "
                     f"{'channels_last' if channels_last else 'NCHW'}, torch's kernels "
                     f"({'F.instance_norm' if norm == 'instance_norm' else 'F.group_norm'}, "
                     "F.pad)")  # fmt: skip
    elif variant in STYLIZER_VARIANTS:
        net_config = config
        if variant == "fast_zero_padding":
            net_config = transform_net.NetworkConfig(
                config.channels, config.residual_blocks, "zeros", config.edge_kernel
            )
            state = None if config.padding != "zeros" else state
        compiled = variant.startswith("compiled")
        model = fast.FastModel(build(net_config, state), {}, Path("benchmark"))
        compile_now = compiled and variant != "compiled_unaligned"  # that one: after set_kernels
        stylizer = fast.Stylizer(model, device.type, compile=compile_now)
        network, dtype, layout = stylizer.network, stylizer.dtype, stylizer.memory_format
        norm, pad, align = stylizer.kernels
        if compiled:  # the kernels the Stylizer compiles with
            norm, pad, align = layers.inference_kernels(
                device.type, layout == torch.channels_last, True
            )
        if variant == "fast_var_mean":
            norm = "var_mean"
        if variant.endswith("_unaligned"):
            align = 1
        elif variant.endswith("_aligned"):
            align = 8
        if (norm, pad, align) != stylizer.kernels:
            layers.set_kernels(network, norm, pad, align)
        if variant == "compiled_unaligned":
            network = torch.compile(network, dynamic=False)
        described = (
            f"impasto Stylizer: {str(dtype).removeprefix('torch.')}, "
            + ("channels_last" if layout == torch.channels_last else "NCHW")
            + f", norm {norm}, padding {pad}, RGB convs with {max(3, align)} channels"
        )
        if compiled:
            described += ", torch.compile"
        if variant == "fast_zero_padding":
            described += ", zero padding"
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
            reference_output = None
            # A fresh compile per shape (never dynamo's recompile limit); not per variant, which
            # would throw away the compiled code of the variants built before.
            torch._dynamo.reset()
            for variant in variants:
                try:
                    run, described = make_runner(variant, config, state, device)
                    warm = time.perf_counter()
                    output = run(images).float()
                    for _ in range(args.warmup):
                        timed(run, images, device)
                    runners[variant] = run
                    entry["variants"][variant] = {
                        "what": described,
                        "warmup_s": round(time.perf_counter() - warm, 2),
                    }
                    if variant == "reference":
                        reference_output = output
                    elif reference_output is not None:
                        difference = (output - reference_output).abs().max().item()
                        entry["variants"][variant]["max_abs_diff_vs_reference"] = round(
                            difference, 5
                        )
                    del output
                except Exception as error:  # a variant that cannot run is reported, not fatal
                    entry["variants"][variant] = {"error": f"{type(error).__name__}: {error}"}
            del reference_output
            for run in runners.values():  # anything recompiled since its warm-up: not timed
                timed(run, images, device)
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


def bench_kernels(args, device: torch.device, result: dict, save) -> None:
    """Single kernels on one activation of the network's first layer (width ``--channels``) at
    the largest resolution: time and the layout of what each returns, for a channels_last
    input. fp16 on CUDA, fp32 on the CPU."""
    height, width = RESOLUTIONS[args.resolutions[-1]]
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    channels = args.channels
    x = torch.randn(1, channels, height, width, device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.ones(channels, device=device, dtype=dtype)
    bias = torch.zeros(channels, device=device, dtype=dtype)
    conv = nn.Conv2d(channels, channels, 3).to(device, dtype).to(memory_format=torch.channels_last)

    def rgb_conv(cin: int, cout: int) -> nn.Module:
        return (
            nn.Conv2d(cin, cout, 9, padding=4)
            .to(device, dtype)
            .to(memory_format=torch.channels_last)
        )

    first, first8, last, last8 = (rgb_conv(3, channels), rgb_conv(8, channels),
                                  rgb_conv(channels, 3), rgb_conv(channels, 8))  # fmt: skip
    rgb = torch.rand(1, 3, height, width, device=device, dtype=dtype)
    rgb = rgb.contiguous(memory_format=torch.channels_last)
    rgb8 = F.pad(rgb, (0, 0, 0, 0, 0, 5))
    norms = {}
    for kernel in layers.NORM_KERNELS:
        norm = layers.InstanceNorm(channels).to(device, dtype)
        norm.kernel = kernel
        norms[kernel] = norm
    operations = {
        "F.instance_norm": lambda: F.instance_norm(x, weight=weight, bias=bias),
        "F.group_norm (one channel per group)": lambda: F.group_norm(x, channels, weight, bias),
        "impasto norm: var_mean": lambda: norms["var_mean"](x),
        "impasto norm: batch_norm": lambda: norms["batch_norm"](x),
        "F.pad reflect 1": lambda: F.pad(x, (1, 1, 1, 1), mode="reflect"),
        "impasto reflect_pad 1": lambda: layers.reflect_pad(x, 1),
        "F.interpolate nearest x2": lambda: F.interpolate(x, scale_factor=2.0, mode="nearest"),
        "conv 3x3 (channels_last input)": lambda: conv(x),
        "conv 3x3 (NCHW input: converts)": lambda: conv(x.contiguous()),
        "to NCHW (one layout conversion)": lambda: x.contiguous(),
        f"conv 9x9 3->{channels} (first layer)": lambda: first(rgb),
        f"conv 9x9 8->{channels} (first layer, 5 zero channels)": lambda: first8(rgb8),
        f"conv 9x9 {channels}->3 (last layer)": lambda: last(x),
        f"conv 9x9 {channels}->8 (last layer, 5 zero channels)": lambda: last8(x),
    }
    entry = {"input": f"(1, {channels}, {height}, {width}) {str(dtype).removeprefix('torch.')} "
             "channels_last", "operations": {}}  # fmt: skip
    note(f"kernels on {entry['input']}")
    with torch.inference_mode():
        for name, operation in operations.items():
            try:
                out = operation()
                keeps = bool(out.is_contiguous(memory_format=torch.channels_last))
                del out

                def call(_images, operation=operation):
                    return operation()

                for _ in range(args.warmup):
                    timed(call, x, device)
                values = [timed(call, x, device) for _ in range(args.repeats)]
                entry["operations"][name] = {"median_ms": round(statistics.median(values), 3),
                                             "returns_channels_last": keeps}  # fmt: skip
            except Exception as error:
                entry["operations"][name] = {"error": f"{type(error).__name__}: {error}"}
    result["kernels"] = entry
    save()


def bench_profile(args, device: torch.device, config, state, result: dict, save) -> None:
    """The CUDA kernels that take the time (torch.profiler), for the popular fp16
    channels_last configuration and for ``fast``, one image at the largest resolution."""
    from torch.profiler import ProfilerActivity, profile

    height, width = RESOLUTIONS[args.resolutions[-1]]
    images = torch.rand(1, 3, height, width, device=device)
    result["profile"] = {}
    for variant in ("fp16_channels_last_torch", "fast"):
        try:
            run, described = make_runner(variant, config, state, device)
            for _ in range(2):
                run(images)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as profiler:
                run(images)
                torch.cuda.synchronize()
        except Exception as error:  # the profiler is an explanation, not a measurement
            result["profile"][variant] = {"error": f"{type(error).__name__}: {error}"}
            continue
        rows = []
        for event in profiler.key_averages():
            device_us = getattr(event, "device_time_total", None)
            if device_us is None:
                device_us = getattr(event, "cuda_time_total", 0)
            if device_us > 0:
                rows.append((device_us, event.key, event.count))
        rows.sort(reverse=True)
        total = sum(r[0] for r in rows if not r[1].startswith("aten::"))
        result["profile"][variant] = {
            "what": described, "gpu_kernel_ms_total": round(total / 1000, 2),
            "top": [{"kernel": key[:120], "ms": round(us / 1000, 3), "calls": count}
                    for us, key, count in rows[: args.profile_rows]],
        }  # fmt: skip
        save()


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
    entry = {"size": args.train_size, "batch": args.train_batch, "backbone": backbone.name,
             "channels": args.channels, "residual_blocks": args.residual_blocks}  # fmt: skip
    times: list[float] = []

    def progress(event) -> None:  # after each step; the step's losses were read: GPU work done
        times.append(time.perf_counter())

    steps = max(args.warmup, 1) + args.train_steps
    config = fast.FastTrainConfig(size=args.train_size, batch=args.train_batch, steps=steps,
                                  backbone=backbone.name, device=device.type,
                                  channels=args.channels, residual_blocks=args.residual_blocks,
                                  edge_kernel=args.edge_kernel, checkpoint_every=10**6,
                                  preview_every=0)  # fmt: skip
    folder = Path(args.scratch) / "train"
    shutil.rmtree(folder, ignore_errors=True)
    fast.train(style, photos, folder, config, backbone=backbone, progress=progress)
    warmup = max(args.warmup, 1)  # the clock starts at the end of a finished step
    seconds = times[-1] - times[warmup - 1]
    timed_steps = len(times) - warmup
    entry.update(
        {
            "warmup_steps": warmup,
            "timed_steps": timed_steps,
            "seconds": round(seconds, 3),
            "ms_per_step": round(1000 * seconds / timed_steps, 2),
            "images_per_second": round(timed_steps * args.train_batch / seconds, 2),
            "method": "time between the progress events of the last --train-steps steps "
            "(one step = forward, losses, backward, Adam; losses read back each step)",
        }
    )
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
    parser.add_argument(
        "--edge-kernel", type=int, default=9, choices=transform_net.EDGE_KERNEL_CHOICES
    )
    parser.add_argument("--model", help="a model folder (default: random weights)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--kernels", action=argparse.BooleanOptionalAction, default=None,
                        help="time single kernels (default: on CUDA)")  # fmt: skip
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.profiler kernel table (CUDA only; default: on)",
    )
    parser.add_argument("--profile-rows", type=int, default=12)
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
        config = transform_net.NetworkConfig(
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
        if args.kernels if args.kernels is not None else device.type == "cuda":
            bench_kernels(args, device, result, save)
        if device.type == "cuda" and args.profile is not False:
            bench_profile(args, device, config, state, result, save)
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
