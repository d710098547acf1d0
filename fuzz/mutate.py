"""A small deterministic mutator: what the test suite runs in place of a coverage-guided fuzzer.

Byte-level operations (flip a bit, set a byte, insert, delete, duplicate or overwrite a range
with interesting integers, truncate, splice two seeds), PNG chunk CRCs repaired half of the
time (so mutations reach the decoder instead of stopping at the checksum), and JSON-aware
operations for model folders (replace a value with a type confusion or an extreme).
The same seed always gives the same inputs.
"""

from __future__ import annotations

import json
import random
import struct
import zlib

from .seeds import FOLDER_FILES, json_seed_texts, pack_folder, unpack_folder

_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


def mutate_bytes(data: bytes, rng: random.Random, others: list[bytes] = ()) -> bytes:
    """One to four random byte-level edits of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == 2:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 3 and out:
            del out[at : at + rng.randint(1, 64)]
        elif op == 4 and out:
            start = rng.randrange(len(out))
            out[at:at] = out[start : start + rng.randint(1, 64)]
        elif op == 5:
            value = rng.choice(_INTERESTING) & (2 ** (8 * (width := rng.choice((1, 2, 4)))) - 1)
            order = rng.choice("<>")
            packed = struct.pack(order + {1: "B", 2: "H", 4: "I"}[width], value)
            out[at : at + width] = packed
        elif op == 6 and out:
            del out[rng.randrange(len(out)) :]  # truncate
        elif op == 7 and others:
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            out = out[:at] + bytearray(other[cut:])
    return bytes(out)


def repair_png_crcs(data: bytes) -> bytes:
    """Recompute each PNG chunk's CRC, so a mutated chunk is parsed rather than refused."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    out = bytearray(data)
    at = 8
    while at + 12 <= len(out):
        length = struct.unpack(">I", out[at : at + 4])[0]
        end = at + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(out[at + 4 : end]) & 0xFFFFFFFF)
        at = end + 4
    return bytes(out)


def mutate_image(data: bytes, rng: random.Random, others: list[bytes] = ()) -> bytes:
    """A byte-level mutation of an image file, with PNG CRCs repaired half of the time."""
    mutated = mutate_bytes(data, rng, others)
    return repair_png_crcs(mutated) if rng.random() < 0.5 else mutated


def mutate_json(text: bytes, rng: random.Random) -> bytes:
    """Replace one value somewhere in a JSON document with a type confusion or an extreme."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return mutate_bytes(text, rng)
    holders = []

    def walk(node):
        if isinstance(node, dict):
            holders.extend((node, key) for key in node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            holders.extend((node, index) for index in range(len(node)))
            for value in node:
                walk(value)

    walk(document)
    marker = "\x00fuzz\x00"
    if holders:
        holder, key = rng.choice(holders)
        holder[key] = marker
    else:
        document = marker
    encoded = json.dumps(document).replace(json.dumps(marker), rng.choice(json_seed_texts()), 1)
    return encoded.encode("utf-8")


def mutate_model(data: bytes, rng: random.Random, others: list[bytes] = ()) -> bytes:
    """Mutate one file of a packed model folder: JSON-aware for the JSON files most of the
    time, else byte-level."""
    files = unpack_folder(data)
    name = rng.choices(FOLDER_FILES, weights=(5, 2, 3))[0]  # the config sizes the network
    current = files.get(name, b"")
    if name.endswith(".json") and rng.random() < 0.8:
        files[name] = mutate_json(current, rng)
    else:
        files[name] = mutate_bytes(current, rng)
    return pack_folder(files)


def mutations(seeds: list[bytes], count: int, mutate, seed: int = 0):
    """``count`` inputs, each a mutation of a seed or of an earlier input (stacked edits)."""
    rng = random.Random(seed)
    pool = list(seeds)
    for _ in range(count):
        parent = rng.choice(pool)
        child = mutate(parent, rng, seeds)
        if rng.random() < 0.3 and len(pool) < 256:
            pool.append(child)
        yield child
