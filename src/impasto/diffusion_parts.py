"""The diffusers side of the diffusion method (methods/diffusion.py): the pipeline with its
ControlNet, IP-Adapter, scheduler and memory savers; the paintings' image-prompt embeddings;
style LoRAs fused and unfused. Imports diffusers only when called (the ``diffusion`` extra).

Everything loads from local folders (``local_files_only``): the same calls load the real
repositories from the Hugging Face cache and the tests' tiny ones from a temporary folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import InputError, WeightsError, first_line
from .repositories import local_folder

Notify = Callable[[str], None]
OFFLOAD_BELOW_GB = {"model": 12.0, "sequential": 6.0}
"""Free CUDA memory under which ``offload auto`` moves idle parts to the CPU (model) or every
layer (sequential: slowest, least memory)."""


def set_ip_scale(pipe, scale, family, *, expect_some: bool) -> None:
    """``pipe.set_ip_adapter_scale(scale)``, and an InputError when a positive scale reached
    no attention block (diffusers ignores block names a UNet does not have: the painting would
    silently be ignored): the model is not of ``family``."""
    pipe.set_ip_adapter_scale(scale)
    reached = [
        value
        for name, processor in pipe.unet.attn_processors.items()
        if hasattr(processor, "scale")
        for value in processor.scale
    ]
    if expect_some and not any(value > 0 for value in reached):
        raise InputError(
            f"the IP-Adapter reached no block of this model: is it {family.name}? (--family)"
        )


def dtype_for(device: torch.device, precision: str) -> torch.dtype:
    if precision == "fp16" or (precision == "auto" and device.type == "cuda"):
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    return torch.float32


def build_pipeline(config, family, base: Path, device: torch.device, notify: Notify | None):
    """The img2img pipeline of ``family`` from ``base`` (with the ControlNet of
    ``config.control`` unless ``none``), the IP-Adapter loaded, the scheduler chosen, placed
    on ``device``."""
    import diffusers
    import transformers

    for library in (diffusers, transformers):  # the library never prints: no bars, no notes
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()
    dtype = dtype_for(device, config.precision)
    common: dict[str, Any] = {"local_files_only": True}
    if dtype != torch.float32:  # fp32 is the default: no keyword (diffusers renames it)
        common["torch_dtype"] = dtype
    xl = family.name == "sdxl"
    try:
        if config.control == "none":
            kind = (
                diffusers.StableDiffusionXLImg2ImgPipeline
                if xl
                else (diffusers.StableDiffusionImg2ImgPipeline)
            )
            pipe = kind.from_pretrained(base, **common, **_no_safety(xl))
        else:
            folder = local_folder(
                config.controlnet or family.controlnets[config.control],
                f"the {config.control} ControlNet",
                f"controlnet-{config.control}-{family.name}",
            )
            controlnet = diffusers.ControlNetModel.from_pretrained(folder, **common)
            kind = (
                diffusers.StableDiffusionXLControlNetImg2ImgPipeline
                if xl
                else (diffusers.StableDiffusionControlNetImg2ImgPipeline)
            )
            pipe = kind.from_pretrained(base, controlnet=controlnet, **common, **_no_safety(xl))
        adapter = local_folder(config.ip_adapter, "the IP-Adapter", f"ip-adapter-{family.name}")
        pipe.load_ip_adapter(
            str(adapter),
            subfolder=family.ip_subfolder,
            weight_name=family.ip_weight,
            image_encoder_folder="image_encoder",
            local_files_only=True,
        )
    except (OSError, ValueError, KeyError) as error:
        raise WeightsError(
            f"cannot load the diffusion model from {base}: {first_line(error)}"
        ) from None
    _choose_scheduler(pipe, config.scheduler)
    pipe.set_progress_bar_config(disable=True)
    _place(pipe, device, config.offload, notify)
    return pipe


def _no_safety(xl: bool) -> dict[str, Any]:
    return {} if xl else {"safety_checker": None, "requires_safety_checker": False}


def _choose_scheduler(pipe, name: str) -> None:
    import diffusers

    kinds = {
        "euler": diffusers.EulerDiscreteScheduler,
        "euler_a": diffusers.EulerAncestralDiscreteScheduler,
        "dpm": diffusers.DPMSolverMultistepScheduler,
        "ddim": diffusers.DDIMScheduler,
    }
    if name in kinds:
        pipe.scheduler = kinds[name].from_config(pipe.scheduler.config)


def _place(pipe, device: torch.device, offload: str, notify: Notify | None) -> None:
    """On ``device``; on CUDA, CPU offload and VAE tiling when asked or when free memory is
    short (``offload auto``), said in one line."""
    if device.type != "cuda":
        pipe.to(device)
        return
    if offload == "auto":
        free_gb = torch.cuda.mem_get_info(device)[0] / 2**30
        offload = next(
            (
                kind
                for kind, below in sorted(OFFLOAD_BELOW_GB.items(), key=lambda item: item[1])
                if free_gb < below
            ),
            "none",
        )
        if offload != "none" and notify is not None:
            notify(f"{free_gb:.1f} GB free on the GPU: {offload} CPU offload and VAE tiling on")
    if offload == "none":
        pipe.to(device)
        return
    pipe.enable_vae_tiling()
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)


def image_prompt(
    pipe,
    styles: Sequence[torch.Tensor],
    weights: Sequence[float],
    device: torch.device,
    guided: bool,
) -> list[torch.Tensor]:
    """The IP-Adapter embeddings of the paintings, blended with ``weights`` (as
    ``ip_adapter_image_embeds``: with guidance, the unconditional half first)."""
    if not styles:
        raise InputError("method 'diffusion' needs at least one style image")
    blended = None
    for style, weight in zip(styles, weights, strict=True):
        picture = _to_pil(style)
        (embeds,) = pipe.prepare_ip_adapter_image_embeds(
            ip_adapter_image=[picture],
            ip_adapter_image_embeds=None,
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=guided,
        )
        blended = embeds * weight if blended is None else blended + embeds * weight
    return [blended]


def _to_pil(image: torch.Tensor):
    from .images import to_pil

    return to_pil(image[:1].float().cpu().clamp(0, 1), None)


def apply_loras(pipe, loras: Sequence[tuple[Path, float]]) -> list[str]:
    """Load each LoRA as an adapter with its scale and fuse them into the weights; the adapter
    names (for ``remove_loras``)."""
    names = []
    for index, (path, _scale) in enumerate(loras):
        name = f"style{index}"
        try:
            pipe.load_lora_weights(str(path), adapter_name=name)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise InputError(
                f"--lora {path}: not a LoRA this model takes ({first_line(error)})"
            ) from None
        names.append(name)
    if names:
        pipe.set_adapters(names, adapter_weights=[scale for _path, scale in loras])
        pipe.fuse_lora(adapter_names=names)
    return names


def remove_loras(pipe, names: Sequence[str]) -> None:
    """Unfuse and unload: the weights are the base model's again."""
    if names:
        pipe.unfuse_lora()
        pipe.unload_lora_weights()
