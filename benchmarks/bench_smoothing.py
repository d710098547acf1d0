#!/usr/bin/env python
"""Speed benchmark of the photorealistic smoothing (impasto.smoothing): ``fast`` (the guided
filter) against ``exact`` (the matting-Laplacian closed form, conjugate gradients), on a real
photo at several sizes (long side 256, 512 and 1024 px by default), measured in the same run.

The content is ../shared/data/photoreal/in27.jpg (``--content`` for another photo), resized
(antialiased bicubic) so its long side is each size. The stylised input is a fixed, seeded
imitation of a stylised result: the content with a colour cast (x 0.8, 1.0, 1.2), colour blotches
(Gaussian noise at 1/16 resolution, bilinear up, std 0.08) and pixel noise (std 0.08), clamped.
Smoothing speed does not depend on the picture much, but the CG iteration count does.

Per size: ``fast`` seconds (median of ``--rounds`` runs, half before and half after the exact
run, so a change in load hits both), ``exact`` seconds (one run by default: minutes at 1024 px
on a small CPU) with its CG iterations and final relative residual, seconds per megapixel of
each, and ``ratio_exact_vs_fast`` = exact / fast seconds. Target (issue): fast under 0.5 s for
a 512 px photo on the CPU (``fast.meets_target``).

Prints a table on stdout and writes the JSON document to ``--out`` (rewritten after every size,
so a run cut short still leaves its results); notes go to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, load_average, machine_info, note  # noqa: E402
from report import to_json, write_atomic  # noqa: E402

from impasto.images import load_image, resize_long_side  # noqa: E402
from impasto.smoothing import (  # noqa: E402
    GUIDED_EPS,
    GUIDED_RADIUS,
    MATTING_EPS,
    MATTING_LAMBDA,
    MATTING_MAX_ITER,
    MATTING_TOL,
    smooth,
    solve_matting,
)

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT.parent / "shared" / "data" / "photoreal" / "in27.jpg"
FAST_TARGET_S = {512: 0.5}  # CPU, long side in pixels


def stylised_imitation(content: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The content with a colour cast, colour blotches and pixel noise (see the module doc)."""
    generator = torch.Generator().manual_seed(seed)
    _, _, height, width = content.shape
    coarse = torch.randn(1, 3, max(1, height // 16), max(1, width // 16), generator=generator)
    blotches = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    noise = torch.randn(1, 3, height, width, generator=generator)
    cast = torch.tensor([0.8, 1.0, 1.2]).view(1, 3, 1, 1)
    return (content * cast + 0.08 * blotches + 0.08 * noise).clamp(0, 1)


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure(photo: torch.Tensor, side: int, rounds: int, exact_rounds: int) -> dict:
    content = resize_long_side(photo, side)
    stylised = stylised_imitation(content)
    height, width = content.shape[-2:]
    megapixels = height * width / 1e6

    def fast():
        return smooth(content, stylised, "fast")

    fast()  # warm-up
    before = [timed(fast) for _ in range(rounds - rounds // 2)]
    exact_samples, solution = [], None
    for _ in range(exact_rounds):
        started = time.perf_counter()
        solution = solve_matting(content, stylised)
        exact_samples.append(time.perf_counter() - started)
    after = [timed(fast) for _ in range(rounds // 2)]
    fast_samples = before + after
    fast_s, exact_s = statistics.median(fast_samples), statistics.median(exact_samples)
    result = {
        "size": f"{width}x{height}",
        "long_side": side,
        "megapixels": round(megapixels, 4),
        "fast": {
            "median_s": round(fast_s, 4),
            "min_s": round(min(fast_samples), 4),
            "samples_s": [round(s, 4) for s in fast_samples],
            "s_per_megapixel": round(fast_s / megapixels, 4),
        },
        "exact": {
            "median_s": round(exact_s, 3),
            "samples_s": [round(s, 3) for s in exact_samples],
            "s_per_megapixel": round(exact_s / megapixels, 3),
            "cg_iterations": solution.iterations,
            "relative_residual": solution.relative_residual,
            "change_from_stylised_rms": round(
                float((solution.image.clamp(0, 1) - stylised).square().mean().sqrt()), 4
            ),
        },
        "ratio_exact_vs_fast": round(exact_s / fast_s, 1),
        "load_average_1min_at_end": load_average(),
    }
    target = FAST_TARGET_S.get(side)
    if target is not None:
        result["fast"]["target_s"] = target
        result["fast"]["meets_target"] = fast_s < target
    return result


def table(results: list[dict]) -> str:
    lines = [
        f"{'size':>10} {'fast s':>8} {'fast s/MP':>10} {'exact s':>9} {'exact s/MP':>11} "
        f"{'CG iters':>9} {'exact/fast':>11}"
    ]
    for row in results:
        fast, exact = row["fast"], row["exact"]
        lines.append(
            f"{row['size']:>10} {fast['median_s']:>8.3f} {fast['s_per_megapixel']:>10.3f} "
            f"{exact['median_s']:>9.2f} {exact['s_per_megapixel']:>11.1f} "
            f"{exact['cg_iterations']:>9} {row['ratio_exact_vs_fast']:>11.1f}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    today = datetime.date.today().isoformat()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", type=Path, default=CONTENT, help="a photo (default in27)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024])
    parser.add_argument("--rounds", type=int, default=6, help="fast runs per size (default 6)")
    parser.add_argument("--exact-rounds", type=int, default=1, help="exact runs per size")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / f"{today}-smoothing.json"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    photo = load_image(args.content).rgb
    document = {
        "benchmark": "bench_smoothing",
        "machine": machine_info(),
        "commit": git_commit(),
        "settings": {
            "content": str(args.content),
            "threads": torch.get_num_threads(),
            "fast": {"radius": GUIDED_RADIUS, "eps": GUIDED_EPS},
            "exact": {
                "lam": MATTING_LAMBDA,
                "eps": MATTING_EPS,
                "tol": MATTING_TOL,
                "max_iter": MATTING_MAX_ITER,
            },
            "fast_rounds": args.rounds,
            "exact_rounds": args.exact_rounds,
        },
        "results": [],
    }
    with torch.inference_mode():
        for side in args.sizes:
            note(f"smoothing at long side {side} px")
            document["results"].append(measure(photo, side, args.rounds, args.exact_rounds))
            write_atomic(args.out, to_json(document))
    print(table(document["results"]))
    note(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
