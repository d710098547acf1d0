"""The Hugging Face repositories the diffusion method loads, and their download.

``impasto download NAME`` (NAME a key of REPOSITORIES) fetches only the files the method loads
into the Hugging Face cache (HF_HOME / HF_HUB_CACHE respected), with the hub's own progress
bars and integrity checks; the method itself only ever reads local files, so nothing is
downloaded silently. Importing this module imports neither torch nor the hub.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import InputError, WeightsError, first_line

REPOSITORIES: dict[str, dict[str, Any]] = {
    "sdxl": {"repo": "stabilityai/stable-diffusion-xl-base-1.0", "size": "about 14 GB",
             "licence": "CreativeML Open RAIL++-M",
             "allow": ["model_index.json", "*/*.json", "*/*.txt", "*/*.safetensors"],
             "ignore": ["*.fp16.*", "*/*.onnx*"]},
    "sd15": {"repo": "stable-diffusion-v1-5/stable-diffusion-v1-5", "size": "about 5 GB",
             "licence": "CreativeML Open RAIL-M",
             "allow": ["model_index.json", "*/*.json", "*/*.txt", "*/*.safetensors"],
             "ignore": ["*.fp16.*", "*/*.onnx*", "safety_checker/*"]},
    "ip-adapter-sdxl": {"repo": "h94/IP-Adapter", "size": "about 3.7 GB", "licence": "Apache-2.0",
                        "allow": ["sdxl_models/ip-adapter_sdxl.safetensors",
                                  "sdxl_models/image_encoder/*"]},
    "ip-adapter-sd15": {"repo": "h94/IP-Adapter", "size": "about 2.5 GB", "licence": "Apache-2.0",
                        "allow": ["models/ip-adapter_sd15.safetensors", "models/image_encoder/*"]},
    "controlnet-canny-sdxl": {"repo": "diffusers/controlnet-canny-sdxl-1.0",
                              "size": "about 5 GB", "licence": "OpenRAIL++",
                              "allow": ["*.json", "*.safetensors"], "ignore": ["*.fp16.*"]},
    "controlnet-depth-sdxl": {"repo": "diffusers/controlnet-depth-sdxl-1.0",
                              "size": "about 5 GB", "licence": "OpenRAIL++",
                              "allow": ["*.json", "*.safetensors"], "ignore": ["*.fp16.*"]},
    "controlnet-canny-sd15": {"repo": "lllyasviel/sd-controlnet-canny", "size": "about 1.4 GB",
                              "licence": "CreativeML Open RAIL-M",
                              "allow": ["*.json", "*.safetensors"]},
    "controlnet-depth-sd15": {"repo": "lllyasviel/control_v11f1p_sd15_depth",
                              "size": "about 1.4 GB", "licence": "CreativeML Open RAIL-M",
                              "allow": ["*.json", "*.safetensors"], "ignore": ["*.fp16.*"]},
    "depth-anything": {"repo": "depth-anything/Depth-Anything-V2-Small-hf",
                       "size": "about 100 MB", "licence": "Apache-2.0",
                       "allow": ["*.json", "*.safetensors"]},
    "clip-text": {"repo": "openai/clip-vit-base-patch32", "size": "about 600 MB",
                  "licence": "MIT", "allow": ["*.json", "*.txt", "*.safetensors"]},
}  # fmt: skip
"""What ``impasto download NAME`` fetches for the diffusion method: Hub repositories (only the
files the method loads), into the Hugging Face cache (HF_HOME / HF_HUB_CACHE respected)."""


def download_repository(name: str, announce=None) -> Path:
    """Fetch the repository ``name`` of REPOSITORIES into the Hugging Face cache (with the
    hub's own progress bars; files already there are kept); its folder. Never called offline."""
    from .weights import is_offline

    entry = REPOSITORIES[name]
    if is_offline():
        raise WeightsError(f"IMPASTO_OFFLINE is set: unset it to download {name} ({entry['repo']})")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise InputError(
            "downloading diffusion weights needs the diffusion extra: "
            "pip install 'impasto[diffusion]'"
        ) from None
    if announce is not None:
        announce(f"downloading {name}: {entry['repo']} ({entry['size']}, licence "
                 f"{entry['licence']}) into the Hugging Face cache")  # fmt: skip
    try:
        path = snapshot_download(
            entry["repo"],
            allow_patterns=entry.get("allow"),
            ignore_patterns=entry.get("ignore"),
            cache_dir=hub_cache(),
        )
    except Exception as error:  # the hub's network and HTTP errors, said in one line
        raise WeightsError(
            f"cannot download {name} ({entry['repo']}): {first_line(error)}"
        ) from None
    return Path(path)


def hub_cache() -> str | None:
    """HF_HUB_CACHE, else HF_HOME/hub, as the environment says now (None: the hub's default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def local_folder(ref: str, what: str, fetch: str) -> Path:
    """The folder of ``ref``: a local folder, or a Hub id already in the Hugging Face cache
    (honouring HF_HOME and HF_HUB_CACHE); WeightsError naming the command that fetches it."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if path.exists() or ref.startswith((".", "/", "~")):
        raise InputError(f"{what} '{ref}' is not a folder")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(ref, local_files_only=True, cache_dir=hub_cache()))
    except Exception:  # not in the cache (LocalEntryNotFoundError and its relatives)
        raise WeightsError(
            f"{what} '{ref}' is not on this machine: `impasto download {fetch}` fetches it "
            "(or give a local folder)"
        ) from None


def is_present(name: str) -> bool:
    """Whether repository ``name`` is on this machine: in the Hugging Face cache, with every
    file it names outright (h94/IP-Adapter holds both families' adapters: the one asked for
    must be there). A look only: no download, no hashing."""
    entry = REPOSITORIES[name]
    try:
        folder = local_folder(entry["repo"], name, name)
    except Exception:  # not in the cache, or the hub not installed
        return False
    named = [pattern for pattern in entry.get("allow", []) if "*" not in pattern]
    return all((folder / pattern).is_file() for pattern in named)
