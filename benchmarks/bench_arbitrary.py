#!/usr/bin/env python
"""Speed benchmark of the arbitrary-style methods (impasto.methods.adain, impasto.methods.wct):
one content image through encoder, transform and decoder, at square sizes (512 and 1024 by
default), on the CPU and, where there is one, on CUDA.

Prints one JSON document on stdout (notes on stderr); ``--out FILE`` also writes it. Every
speed comes with a ratio against a reference measured in the same run, on the same machine,
with the same input: ``ratio_vs_reference = reference_ms / variant_ms`` (> 1: faster). Times are
medians of interleaved rounds (reference, then each variant, the order rotated every round).

Variants:
- ``reference``: the plain way: fp32, NCHW tensors and weights, eager, the style's statistics
  computed once beforehand (as impasto does), nothing else prepared.
- ``impasto``: what ``impasto stylize --method adain|wct`` runs (``TransferRunner.transfer``):
  on the CPU fp32 channels_last; on CUDA fp16 channels_last.
- ``compiled`` (CUDA, AdaIN): the same module under ``torch.compile`` (static shapes).
The targets (from the issue): AdaIN 512x512 under 0.5 s on a 2-core CPU; 1024x1024 under 2 ms on
an H100/H200. Each entry says whether its target was met (``meets_target``). The decoders are
the shipped ones (``--decoder`` for others); speed does not depend on their weights.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, machine_info, note  # noqa: E402
from report import to_json, write_atomic  # noqa: E402

from impasto.decoders import default_decoder, load_decoders  # noqa: E402
from impasto.methods.registry import load_method  # noqa: E402

TARGETS_MS = {("adain", "cpu", 512): 500.0, ("adain", "cuda", 1024): 2.0}


def runner(method: str, decoder: str, device: str, precision: str):
    """The method's prepared runner (a TransferRunner) for one random style image."""
    config = load_method(method).config_class(decoder=decoder, device=device, precision=precision)
    style = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(1))
    return load_method(method).prepare(config, [style])


def reference_runner(method: str, decoder: str, device: str):
    """The same method, fp32 NCHW eager: the runner with channels_last undone."""
    prepared = runner(method, decoder, device, "fp32")
    prepared.encoder = prepared.encoder.to(memory_format=torch.contiguous_format)
    prepared.decoders = prepared.decoders.to(memory_format=torch.contiguous_format)
    prepared.encode = lambda image, layers: prepared.encoder(image.to(device), layers)
    prepared.decode = lambda layer, features, size: (
        prepared.decoders(layer, features.float().contiguous(), size).float().clamp(0, 1)
    )
    if device == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return prepared


def timed(function, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    function()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) * 1000


def measure(method: str, decoder: str, device: str, side: int, rounds: int) -> dict:
    content = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(2))
    content = content.to(device)
    variants = {"reference": reference_runner(method, decoder, device)}
    variants["impasto"] = runner(method, decoder, device, "auto")

    def call(prepared):
        def run():
            with torch.inference_mode():
                return prepared.transfer(content, None, None)

        return run

    calls = {name: call(prepared) for name, prepared in variants.items()}
    if device == "cuda" and method == "adain":
        compiled = runner(method, decoder, device, "auto")
        compiled.decoders = torch.compile(compiled.decoders, dynamic=False)
        compiled.encoder = torch.compile(compiled.encoder, dynamic=False)
        calls["compiled"] = call(compiled)
    outputs = {name: function() for name, function in calls.items()}  # warm-up (and compile)
    for function in calls.values():
        function()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            samples[name].append(timed(calls[name], device))
    reference_ms = statistics.median(samples["reference"])
    result = {"method": method, "device": device, "size": f"{side}x{side}",
              "reference_ms": round(reference_ms, 3), "variants": {}}  # fmt: skip
    target = TARGETS_MS.get((method, device, side))
    for name in names:
        median = statistics.median(samples[name])
        difference = (outputs[name].float().cpu() - outputs["reference"].float().cpu()).abs()
        result["variants"][name] = {
            "median_ms": round(median, 3),
            "min_ms": round(min(samples[name]), 3),
            "ratio_vs_reference": round(reference_ms / median, 3),
            "max_abs_diff_vs_reference": round(float(difference.max()), 5),
        }
        if target is not None:
            result["variants"][name]["target_ms"] = target
            result["variants"][name]["meets_target"] = median < target
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["adain", "wct"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu (+ cuda)")
    parser.add_argument("--rounds", type=int, default=None, help="default: 5 CPU, 30 CUDA")
    parser.add_argument("--decoder", default=None, help="a decoder folder (one method)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    devices = args.devices or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    document = {"benchmark": "bench_arbitrary", "machine": machine_info(),
                "commit": git_commit(), "results": []}  # fmt: skip
    for device in devices:
        for method in args.methods:
            decoder = args.decoder or default_decoder(method)
            load_decoders(decoder, method)  # fails early when missing
            for side in args.sizes:
                rounds = args.rounds or (30 if device == "cuda" else 5)
                note(f"{method} {side}x{side} on {device}")
                document["results"].append(measure(method, decoder, device, side, rounds))
                if args.out:
                    write_atomic(args.out, to_json(document))
    print(to_json(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
