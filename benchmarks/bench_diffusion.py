#!/usr/bin/env python
"""Speed and memory of one denoising step of the diffusion method (impasto.methods.diffusion)
on an SDXL-sized pipeline built from configs with random weights (nothing is downloaded).

The figure is per step: the networks are called directly, as the pipeline's denoising loop calls
them (the ControlNet, then the UNet with its residuals), with the loop's inputs: latents, the
timestep, ``encoder_hidden_states``, ``added_cond_kwargs`` (``text_embeds``, ``time_ids`` and,
with the IP-Adapter, ``image_embeds``), batch 2 (classifier-free guidance's two halves: the
method's default guidance is 5). Not timed: the loop's small extras (scheduler step, guidance
arithmetic) and per-run work (prompt and image encoding, VAE). On CUDA
``torch.cuda.synchronize()`` runs before and after each timed step.

Variants, in interleaved rounds (order rotated each round) after warm-up steps; medians;
``ratio_vs_reference = reference_ms / variant_ms`` (> 1: faster):
- ``base`` (REFERENCE): img2img, the UNet alone with its own attention processors;
- ``ip_adapter``: + the image-prompt tokens (the adapter's attention processors and image
  projection), scaled per block by the method's own code (``--ip-blocks``, ``--ip-scale``);
- ``ip_adapter_controlnet``: + the ControlNet: what the method runs by default.
On CUDA, peak memory per variant: ``torch.cuda.max_memory_allocated`` after a reset, the whole
pipeline resident (UNet, ControlNet, both text encoders, VAE).

The configs (below) are the values of the published stabilityai/stable-diffusion-xl-base-1.0
``unet/``, ``vae/``, ``text_encoder/``, ``text_encoder_2/`` and ``scheduler/`` configs. The
ControlNet is ``ControlNetModel.from_unet`` of that UNet (the architecture of
diffusers/controlnet-canny-sdxl-1.0). The IP-Adapter is a state dict in the layout of h94's
``sdxl_models/ip-adapter_sdxl.safetensors`` with random values (``image_proj``: Linear 1280 ->
4 x 2048 + LayerNorm; ``to_k_ip``/``to_v_ip`` per cross-attention), loaded by the pipeline's own
``load_ip_adapter``. The CLIP image encoder is not built: image embeddings are made once per run,
not per step (random here; the real ViT-bigG encoder adds about 3.4 GiB in fp16).

``--device cpu`` needs ``--tiny`` (SDXL's structure, tiny widths: checks the logic in seconds).
One JSON document on stdout (notes on stderr); ``--out FILE`` also gets it after every round.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import statistics
import sys
import time
from pathlib import Path

import torch

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys_machine import git_commit, machine_info, note  # noqa: E402
from report import to_json, write_atomic  # noqa: E402

import impasto.methods.diffusion as method  # noqa: E402

try:
    import diffusers
    import transformers
except ImportError:  # refused in main, in one line
    diffusers = transformers = None

VARIANTS = ("base", "ip_adapter", "ip_adapter_controlnet")
REFERENCE = "base"
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
SCHEMA_VERSION = 1
SETTINGS = ("device", "dtype", "size", "batch", "tiny", "compile", "rounds", "steps", "warmup",
            "ip_blocks", "ip_scale", "control_scale")  # fmt: skip
REAL_NOTE = ("stabilityai/stable-diffusion-xl-base-1.0's unet, vae, text encoders; "
             "ControlNetModel.from_unet; h94 ip-adapter_sdxl's shapes; random weights")  # fmt: skip
TINY_NOTE = "tiny widths with SDXL's structure (--tiny): checks the logic, not a speed figure"

# stabilityai/stable-diffusion-xl-base-1.0 as published (2.57 B UNet parameters):
# unet/config.json without its "_class_name" / "_diffusers_version"
SDXL_UNET_CONFIG = json.loads("""{
 "act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
 "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20],
 "block_out_channels": [320, 640, 1280], "center_input_sample": false,
 "class_embed_type": null, "class_embeddings_concat": false, "conv_in_kernel": 3,
 "conv_out_kernel": 3, "cross_attention_dim": 2048, "cross_attention_norm": null,
 "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
 "downsample_padding": 1, "dual_cross_attention": false, "encoder_hid_dim": null,
 "encoder_hid_dim_type": null, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
 "layers_per_block": 2, "mid_block_only_cross_attention": null, "mid_block_scale_factor": 1,
 "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
 "num_attention_heads": null, "num_class_embeds": null, "only_cross_attention": false,
 "out_channels": 4, "projection_class_embeddings_input_dim": 2816,
 "resnet_out_scale_factor": 1.0, "resnet_skip_time_act": false,
 "resnet_time_scale_shift": "default", "sample_size": 128, "time_cond_proj_dim": null,
 "time_embedding_act_fn": null, "time_embedding_dim": null,
 "time_embedding_type": "positional", "timestep_post_act": null,
 "transformer_layers_per_block": [1, 2, 10],
 "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
 "upcast_attention": null, "use_linear_projection": true}""")
# vae/config.json
SDXL_VAE_CONFIG = json.loads("""{
 "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
 "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D",
                      "DownEncoderBlock2D"],
 "force_upcast": true, "in_channels": 3, "latent_channels": 4, "layers_per_block": 2,
 "norm_num_groups": 32, "out_channels": 3, "sample_size": 1024, "scaling_factor": 0.13025,
 "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D",
                    "UpDecoderBlock2D"]}""")
# text_encoder/config.json (CLIP ViT-L/14's text model) and text_encoder_2/config.json
# (OpenCLIP ViT-bigG/14's), the fields that set their size
SDXL_TEXT_CONFIG = json.loads("""{
 "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
 "num_attention_heads": 12, "max_position_embeddings": 77, "projection_dim": 768,
 "hidden_act": "quick_gelu"}""")
SDXL_TEXT_2_CONFIG = json.loads("""{
 "vocab_size": 49408, "hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
 "num_attention_heads": 20, "max_position_embeddings": 77, "projection_dim": 1280,
 "hidden_act": "gelu"}""")
# scheduler/scheduler_config.json (EulerDiscreteScheduler)
SDXL_SCHEDULER_CONFIG = json.loads("""{
 "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
 "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
 "sample_max_value": 1.0, "set_alpha_to_one": false, "skip_prk_steps": true,
 "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": null,
 "use_karras_sigmas": false}""")
SDXL_IMAGE_EMBED_DIM = 1280  # ip-adapter_sdxl: ViT-bigG image embeddings, 4 image tokens
IP_TOKENS = 4
CONTROLNET_CONDITIONING = (16, 32, 96, 256)  # from_unet's default, as the canny SDXL ControlNet

# --tiny: SDXL's structure (blocks, text-time embedding, two text encoders) with tiny widths
TINY_UNET = {"block_out_channels": [32, 64, 64], "transformer_layers_per_block": [1, 1, 2],
             "attention_head_dim": [2, 4, 4], "cross_attention_dim": 64,  # 32 + 32 (text)
             "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 6 * 8 + 32,
             "sample_size": 8}  # fmt: skip
TINY_VAE = {"block_out_channels": [8, 8, 16, 16], "layers_per_block": 1, "norm_num_groups": 8,
            "sample_size": 64}  # fmt: skip
TINY_TEXT = {"vocab_size": 1000, "hidden_size": 32, "intermediate_size": 37,
             "num_hidden_layers": 2, "num_attention_heads": 4, "projection_dim": 32}  # fmt: skip
TINY_IMAGE_EMBED_DIM = 32
TINY_CONTROLNET_CONDITIONING = (8, 8, 16, 16)


def unet_config(tiny: bool) -> dict:
    return {**SDXL_UNET_CONFIG, **(TINY_UNET if tiny else {})}


def build_unet(tiny: bool = False):
    """SDXL's UNet from its config (random weights, on torch's current default device)."""
    return diffusers.UNet2DConditionModel(**unet_config(tiny))


def build_controlnet(unet, tiny: bool = False):
    """``ControlNetModel.from_unet``: SDXL's encoder copied into a ControlNet (built before the
    IP-Adapter is loaded, as the real one was made from the plain UNet), its zero convolutions
    made random so that its residuals are not zeros, as after training."""
    channels = TINY_CONTROLNET_CONDITIONING if tiny else CONTROLNET_CONDITIONING
    net = diffusers.ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=channels)
    zeros = [
        *net.controlnet_down_blocks,
        net.controlnet_mid_block,
        net.controlnet_cond_embedding.conv_out,
    ]
    for parameter in (p for module in zeros for p in module.parameters()):
        parameter.data.normal_(0.0, 0.02)
    return net


def build_text_encoders(tiny: bool):
    configs = [dict(SDXL_TEXT_CONFIG), dict(SDXL_TEXT_2_CONFIG)]
    if tiny:
        configs = [{**config, **TINY_TEXT} for config in configs]
    first = transformers.CLIPTextModel(transformers.CLIPTextConfig(**configs[0]))
    second = transformers.CLIPTextModelWithProjection(transformers.CLIPTextConfig(**configs[1]))
    return first.eval(), second.eval()


def ip_adapter_state_dict(unet, image_embed_dim: int, device, dtype) -> dict:
    """An IP-Adapter (base, 4 image tokens) as ``load_ip_adapter`` reads h94's safetensors file:
    ``image_proj`` (proj: Linear image_embed_dim -> 4 x cross_dim, norm: LayerNorm) and
    ``ip_adapter`` (``<n>.to_k_ip.weight`` / ``to_v_ip.weight`` for each cross-attention, ``n``
    its position among the UNet's attention processors: 1, 3, 5, ...), random values."""
    cross = unet.config.cross_attention_dim
    modules = dict(unet.named_modules())

    def rand(*shape, std=0.02):
        return torch.randn(*shape, device=device, dtype=dtype) * std

    image_proj = {
        "proj.weight": rand(IP_TOKENS * cross, image_embed_dim),
        "proj.bias": rand(IP_TOKENS * cross),
        "norm.weight": 1 + rand(cross),
        "norm.bias": rand(cross),
    }
    ip_adapter = {}
    for position, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            shape = modules[name.removesuffix(".processor")].to_k.weight.shape
            for projection in ("to_k_ip", "to_v_ip"):
                ip_adapter[f"{position}.{projection}.weight"] = rand(*shape)
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


def parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_pipeline(tiny: bool, device: torch.device, dtype: torch.dtype):
    """The method's SDXL ControlNet img2img pipeline (no tokenizers: the prompt embeddings are
    made from token ids), each part moved to ``dtype`` as soon as it is built (less peak
    memory), the IP-Adapter loaded through ``pipe.load_ip_adapter``; also the ``Switch``
    between the UNet's own attention processors and the adapter's, the image embeddings' size
    and each part's parameter count."""
    with torch.device(device):
        unet = build_unet(tiny).to(dtype).eval()
        controlnet = build_controlnet(unet, tiny).to(dtype).eval()
        text_encoder, text_encoder_2 = (m.to(dtype) for m in build_text_encoders(tiny))
        vae_config = {**SDXL_VAE_CONFIG, **(TINY_VAE if tiny else {})}
        vae = diffusers.AutoencoderKL(**vae_config).to(dtype).eval()
    scheduler = diffusers.EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG)
    pipe = diffusers.StableDiffusionXLControlNetImg2ImgPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=None,
        tokenizer_2=None, unet=unet, controlnet=controlnet, scheduler=scheduler,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    embed_dim = TINY_IMAGE_EMBED_DIM if tiny else SDXL_IMAGE_EMBED_DIM
    state = ip_adapter_state_dict(unet, embed_dim, device, dtype)
    plain = dict(unet.attn_processors)  # the UNet's own, for ``base``
    pipe.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None)
    counts = {
        "unet": parameters(unet) - parameters(unet.encoder_hid_proj),
        "controlnet": parameters(controlnet),
        "ip_adapter": sum(v.numel() for part in state.values() for v in part.values()),
        "text_encoder": parameters(text_encoder),
        "text_encoder_2": parameters(text_encoder_2),
        "vae": parameters(vae),
    }
    return pipe, Switch(unet, plain), embed_dim, counts


class Switch:
    """One UNet, two states: its own attention processors (``base``) or the IP-Adapter's
    processors and image projection (the state ``load_ip_adapter`` left)."""

    def __init__(self, unet, plain: dict):
        self.unet = unet
        self.plain = plain
        self.with_ip = dict(unet.attn_processors)
        self.projection = unet.encoder_hid_proj

    def use(self, ip: bool) -> None:
        self.unet.set_attn_processor(dict(self.with_ip if ip else self.plain))  # it pops keys
        self.unet.encoder_hid_proj = self.projection if ip else None


def step_inputs(pipe, size: int, batch: int, embed_dim: int, strength: float, device, dtype):
    """What the denoising loop gives the networks at ``size`` x ``size``: latents, the first
    img2img timestep, the prompt embeddings made by both text encoders (as ``encode_prompt``
    after the tokenizers), SDXL's time ids, random image embeddings and control image."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g).to(device, dtype)

    with torch.inference_mode():
        vocab = pipe.text_encoder.config.vocab_size
        ids = torch.randint(0, vocab, (batch, 77), generator=g).to(device)
        first = pipe.text_encoder(ids, output_hidden_states=True)
        second = pipe.text_encoder_2(ids, output_hidden_states=True)
        prompt = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
        pooled = second.text_embeds
    steps = method.DiffusionConfig().steps
    pipe.scheduler.set_timesteps(steps, device=device)
    start = steps - int(steps * strength)  # where img2img begins
    timestep = pipe.scheduler.timesteps[start]
    time_ids = torch.tensor([[size, size, 0, 0, size, size]] * batch, device=device, dtype=dtype)
    latent = size // pipe.vae_scale_factor
    return {
        "latents": rand(batch, 4, latent, latent),
        "timestep": timestep,
        "prompt_embeds": prompt.to(dtype),
        "text_conds": {"text_embeds": pooled.to(dtype), "time_ids": time_ids},
        "image_embeds": [rand(batch, 1, embed_dim)],
        "control_image": torch.rand(batch, 3, size, size, generator=g).to(device, dtype),
    }


def step_calls(unet, controlnet, inputs: dict, control_scale: float) -> dict:
    """One denoising step's network calls for each variant, with the arguments the pipeline's
    loop passes (``unet``/``controlnet`` may be compiled wrappers)."""
    latents, t, text = inputs["latents"], inputs["timestep"], inputs["text_conds"]
    common = {"encoder_hidden_states": inputs["prompt_embeds"], "return_dict": False}
    with_image = {**text, "image_embeds": inputs["image_embeds"]}
    control = {"controlnet_cond": inputs["control_image"], "conditioning_scale": control_scale}

    def base():
        return unet(latents, t, added_cond_kwargs=text, **common)[0]

    def ip_adapter():
        return unet(latents, t, added_cond_kwargs=with_image, **common)[0]

    def ip_adapter_controlnet():
        down, mid = controlnet(
            latents, t, added_cond_kwargs=text, guess_mode=False, **control, **common
        )
        residuals = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
        return unet(latents, t, added_cond_kwargs=with_image, **residuals, **common)[0]

    return {"base": base, "ip_adapter": ip_adapter, "ip_adapter_controlnet": ip_adapter_controlnet}


def timed(function, cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    function()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - started) * 1000


def summary(samples: dict[str, list[float]], memory: dict[str, dict]) -> dict:
    """The variants' medians, ratios against ``base`` and memory, from the samples so far."""
    reference_ms = statistics.median(samples[REFERENCE])
    out = {}
    for name in VARIANTS:
        median = statistics.median(samples[name])
        out[name] = {
            "median_ms": round(median, 3),
            "min_ms": round(min(samples[name]), 3),
            "ratio_vs_reference": round(reference_ms / median, 3),
            "samples_ms": [round(s, 3) for s in samples[name]],
            **memory[name],
        }
    return out


def machine() -> dict:
    info = machine_info()  # with torch's version and, on CUDA, the GPU's
    for package in ("diffusers", "transformers", "accelerate"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            info[f"{package}_version"] = importlib.metadata.version(package)
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def refusal(args) -> str | None:
    """Why this run is refused (one line), or None."""
    if diffusers is None or transformers is None:
        return "bench_diffusion needs diffusers and transformers: pip install -e '.[diffusion]'"
    if args.device == "cuda" and not torch.cuda.is_available():
        return "bench_diffusion: --device cuda, but CUDA is not available here"
    if args.device == "cpu" and not args.tiny:
        return (
            "bench_diffusion: an SDXL-sized UNet on the CPU would take hours; "
            "use --device cuda, or --tiny to check the script"
        )
    if args.size % 64:
        return f"bench_diffusion: --size {args.size} is not a multiple of 64 (what the UNet takes)"
    return None


def parse(argv):
    defaults = method.DiffusionConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--device", choices=("cuda", "cpu"), help="default: cuda if any (cpu needs --tiny)")
    add("--tiny", action="store_true", help="tiny widths, SDXL's structure: checks the logic")
    add("--size", type=int, default=1024, help="square image side, a multiple of 64")
    add("--dtype", choices=("auto", *DTYPES), default="auto", help="auto: fp16 CUDA, fp32 CPU")
    add("--batch", type=int, default=2, help="2: classifier-free guidance's two halves")
    add("--rounds", type=int, help="interleaved rounds (default: 10 CUDA, 2 CPU)")
    add("--steps", type=int, help="timed steps per variant per round (default: 3 CUDA, 1 CPU)")
    add("--warmup", type=int, help="warm-up steps per variant (default: 3 CUDA, 1 CPU)")
    add("--compile", action="store_true", help="torch.compile the UNet and ControlNet")
    add("--ip-blocks", choices=method.IP_BLOCK_CHOICES, default=defaults.ip_blocks)
    add("--ip-scale", type=float, default=defaults.ip_scale)
    add("--control-scale", type=float, default=defaults.control_scale)
    add("--out", type=Path, help="also write the JSON here (rewritten after every round)")
    args = parser.parse_args(argv)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = args.device == "cuda"
    args.dtype = args.dtype if args.dtype != "auto" else ("fp16" if cuda else "fp32")
    args.rounds = args.rounds or (10 if cuda else 2)
    args.steps = args.steps or (3 if cuda else 1)
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    return args


def main(argv=None) -> int:
    args = parse(argv)
    reason = refusal(args)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    from impasto import diffusion_parts as parts

    for library in (diffusers, transformers):
        library.utils.logging.set_verbosity_error()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    dtype = DTYPES[args.dtype]
    torch.manual_seed(0)
    document = {
        "benchmark": "bench_diffusion",
        "schema_version": SCHEMA_VERSION,
        "machine": machine(),
        "commit": git_commit(),
        "settings": {
            **{key: getattr(args, key) for key in SETTINGS},
            "configs": TINY_NOTE if args.tiny else REAL_NOTE,
        },
        "reference": REFERENCE,
    }
    note(f"building the {'tiny' if args.tiny else 'SDXL-sized'} pipeline on {device} ({dtype})")
    started = time.perf_counter()
    pipe, switch, embed_dim, counts = build_pipeline(args.tiny, device, dtype)
    family = method.FAMILIES["sdxl"]  # the block scales, set by the method's own code
    scale = method.ip_scales(family, args.ip_blocks, args.ip_scale)
    parts.set_ip_scale(pipe, scale, family, expect_some=args.ip_scale > 0)
    document["model"] = {
        "parameters": counts,
        "build_seconds": round(time.perf_counter() - started, 2),
        "attention_processors": {
            "base": sorted({type(p).__name__ for p in switch.plain.values()}),
            "ip_adapter": sorted({type(p).__name__ for p in switch.with_ip.values()}),
        },
        "image_encoder": "not built: image embeddings are per run, random here",
    }
    inputs = step_inputs(
        pipe, args.size, args.batch, embed_dim, method.DiffusionConfig().strength, device, dtype
    )
    document["settings"]["latent"] = list(inputs["latents"].shape)
    document["settings"]["timestep"] = float(inputs["timestep"])
    unet, controlnet = pipe.unet, pipe.controlnet
    if args.compile:
        dynamo_config = torch._dynamo.config
        for limit in ("recompile_limit", "cache_size_limit"):  # the variants switch processors
            if hasattr(dynamo_config, limit):
                setattr(dynamo_config, limit, max(getattr(dynamo_config, limit), 64))
        unet = torch.compile(unet, dynamic=False)
        controlnet = torch.compile(controlnet, dynamic=False)
    calls = step_calls(unet, controlnet, inputs, args.control_scale)
    return measure(args, document, calls, switch, cuda)


def measure(args, document: dict, calls: dict, switch: Switch, cuda: bool) -> int:
    """Warm-up, then interleaved rounds; the document rewritten after each round."""

    def save() -> None:
        if args.out:
            write_atomic(args.out, to_json(document))

    warmup_seconds = {}
    try:
        with torch.inference_mode():
            for name in VARIANTS:
                note(f"warm-up: {name} ({args.warmup} steps)")
                switch.use(name != "base")
                started = time.perf_counter()
                for _ in range(args.warmup):
                    timed(calls[name], cuda)
                warmup_seconds[name] = round(time.perf_counter() - started, 3)
    except Exception as error:  # a compile failure is reported, not raised
        if not args.compile:
            raise
        document["error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
        save()
        print(to_json(document))
        return 1
    document["warmup_seconds"] = warmup_seconds  # with --compile, includes compiling
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    fields = ("peak_mib", "resident_mib", "peak_over_resident_mib")  # CUDA only, else null
    memory = {name: dict.fromkeys(fields) for name in VARIANTS}
    for index in range(args.rounds):
        shift = index % len(VARIANTS)
        for name in VARIANTS[shift:] + VARIANTS[:shift]:
            switch.use(name != "base")
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                resident = torch.cuda.memory_allocated()
            with torch.inference_mode():
                for _ in range(args.steps):
                    samples[name].append(timed(calls[name], cuda))
            if cuda:
                peak = torch.cuda.max_memory_allocated()
                entry = memory[name]
                entry["peak_mib"] = round(max(entry["peak_mib"] or 0, peak / 2**20), 1)
                entry["resident_mib"] = round(resident / 2**20, 1)
                entry["peak_over_resident_mib"] = round(entry["peak_mib"] - resident / 2**20, 1)
        document["variants"] = summary(samples, memory)
        document["reference_ms"] = document["variants"][REFERENCE]["median_ms"]
        note(
            f"round {index + 1}/{args.rounds}: "
            + ", ".join(f"{n} {v['median_ms']} ms" for n, v in document["variants"].items())
        )
        save()
    switch.use(True)  # as the pipeline was loaded
    print(to_json(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
