#!/usr/bin/env python
"""Score impasto's AdaIN (and WCT) against the original AdaIN's published outputs.

The original (Huang & Belongie 2017: VGG-19 encoder, decoder trained for 160k iterations on
MS-COCO and WikiArt) published six stylised images with their cropped inputs in the
``examples/`` folder of xunhuang1995/AdaIN-style. They are not part of this project and are not
shipped: give the folder of a checkout (``--examples DIR``). For each triple this script runs
impasto's methods on the same content (at the published output's size) and style (long side
512), and scores every output with ``impasto.metrics.evaluate`` on EfficientNet-Lite2, the
network no method was trained on or tuned against: SSIM against the content (structure kept)
and the style ratio (Gram distance to the style over the content's own: lower is more
stylised). Prints one JSON document (and a Markdown table on stderr).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import impasto
from impasto.images import load_image
from impasto.metrics import evaluate

TRIPLES = (  # (content, style, the original's output), in examples/
    ("avril_cropped.jpg", "impronte_d_artista_cropped.jpg",
     "avril_stylized_impronte_d_artista.jpg"),
    ("chicago_cropped.jpg", "ashville_cropped.jpg", "chicago_stylized_asheville.jpg"),
    ("cornell_cropped.jpg", "woman_with_hat_matisse_cropped.jpg",
     "cornell_stylized_woman_with_hat_matisse.jpg"),
    ("lenna_cropped.jpg", "en_campo_gris_cropped.jpg", "lenna_stylized_en_campo_gris.jpg"),
    ("modern_cropped.jpg", "goeritz_cropped.jpg", "modern_stylized_goeritz.jpg"),
    ("sailboat_cropped.jpg", "sketch_cropped.png", "sailboat_stylized_sketch.jpg"),
)  # fmt: skip


def score(output, content, style) -> dict[str, float]:
    report = evaluate(output, content, style, backbone="efficientnet-lite2",
                      metrics=["ssim", "style_ratio"], references=False)  # fmt: skip
    return {name: float(value) for name, value in report.metrics.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=Path, required=True)
    parser.add_argument("--methods", nargs="+", default=["adain", "wct"])
    parser.add_argument("--decoder", action="append", default=[], metavar="METHOD=DIR")
    parser.add_argument("--out-dir", type=Path, help="write impasto's outputs here")
    args = parser.parse_args(argv)
    decoders = dict(item.split("=", 1) for item in args.decoder)
    rows = []
    for content_name, style_name, output_name in TRIPLES:
        content = load_image(args.examples / content_name).rgb
        style = load_image(args.examples / style_name).rgb
        published = load_image(args.examples / output_name).rgb
        height, width = published.shape[-2:]
        row = {"pair": output_name, "size": f"{width}x{height}",
               "original_adain": score(published, content, style)}  # fmt: skip
        for method in args.methods:
            options = {"size": max(height, width)}
            if method in decoders:
                options["decoder"] = decoders[method]
            result = impasto.stylize(content, [style], method=method, **options)
            if args.out_dir:
                args.out_dir.mkdir(parents=True, exist_ok=True)
                impasto.save_image(result.image, args.out_dir / f"{method}-{output_name}")
            row[f"impasto_{method}"] = score(result.image, content, style)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    columns = ["original_adain", *(f"impasto_{m}" for m in args.methods)]
    means = {column: {metric: statistics.mean(row[column][metric] for row in rows)
                      for metric in ("ssim", "style_ratio")} for column in columns}  # fmt: skip
    print(json.dumps({"rows": rows, "means": means}, indent=2))
    print("| output | SSIM | style ratio |\n|---|---|---|", file=sys.stderr)
    for column, values in means.items():
        print(f"| {column} | {values['ssim']:.3f} | {values['style_ratio']:.3f} |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
