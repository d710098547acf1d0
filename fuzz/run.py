"""Coverage-guided fuzzing with atheris (an optional tool: ``pip install atheris``).

    python -m fuzz.run image -max_total_time=1800 -print_final_stats=1 fuzz/corpus/image
    python -m fuzz.run model -max_total_time=1800 -print_final_stats=1 fuzz/corpus/model

The first argument picks the target (image: impasto.images.load_image; model: a model folder
through impasto.methods.fast.load_model); the rest go to libFuzzer. A corpus folder (created
if missing) is filled with the seeds first and keeps what the run finds. A crash is written
to ``crash-<hash>`` in the current folder; re-run one input with ``python -m fuzz.run image
crash-<hash>``. See docs/fuzzing.md.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path


def main() -> None:
    import atheris

    if len(sys.argv) < 2 or sys.argv[1] not in ("image", "model"):
        sys.exit("usage: python -m fuzz.run {image,model} [libFuzzer options] [corpus folder]")
    kind = sys.argv.pop(1)
    with atheris.instrument_imports(include=["impasto", "PIL", "safetensors", "fuzz"]):
        from PIL import Image

        Image.init()  # every format plugin now, inside the block, so they are instrumented too
        from fuzz import mutate, seeds, targets
    target = targets.TARGETS[kind]
    seed_inputs = seeds.image_seeds() if kind == "image" else seeds.model_seeds()
    for folder in (Path(arg) for arg in sys.argv[1:] if not arg.startswith("-")):
        if not folder.exists() or folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            for number, data in enumerate(seed_inputs):
                (folder / f"seed-{number}").write_bytes(data)
    ours = mutate.mutate_image if kind == "image" else mutate.mutate_model

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:  # libFuzzer's own byte mutations, guided by coverage
            return atheris.Mutate(data, max_size)
        return ours(data, rng, seed_inputs)[:max_size]

    atheris.Setup(sys.argv, target, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
