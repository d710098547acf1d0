"""Tiny random-weight stand-ins for the Hugging Face repositories of the diffusion method.

``build_tiny_repos(root)`` writes, with deterministic random weights, folders laid out as the
real repositories are, so that the method's own loading calls (``from_pretrained``,
``load_ip_adapter``, ``load_lora_weights``) run unchanged, on the CPU, with no network:

    sdxl-base/              stabilityai/stable-diffusion-xl-base-1.0 (model_index.json, unet/,
                            vae/, text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/,
                            scheduler/)
    sd15-base/              stable-diffusion-v1-5/stable-diffusion-v1-5 (the same, one text
                            encoder, feature_extractor/; no safety checker)
    ip-adapter/             h94/IP-Adapter: sdxl_models/ip-adapter_sdxl.safetensors,
                            sdxl_models/image_encoder/, models/ip-adapter_sd15.safetensors,
                            models/image_encoder/
    controlnet-canny-sdxl/  diffusers/controlnet-canny-sdxl-1.0 (config.json + weights)
    controlnet-canny-sd15/  lllyasviel/sd-controlnet-canny
    controlnet-depth-sdxl/  diffusers/controlnet-depth-sdxl-1.0
    controlnet-depth-sd15/  lllyasviel/control_v11f1p_sd15_depth
    depth-anything/         depth-anything/Depth-Anything-V2-Small-hf (a DINOv2 backbone and
                            DPT head, config.json, model.safetensors, preprocessor_config.json)
    lora-sdxl.safetensors, lora-sd15.safetensors   style LoRAs (peft/diffusers key names)
    photo.png, painting.png                       the images of ``tiny_photo``/``tiny_painting``

The UNets keep their family's block structure (block types, ``layers_per_block=2``, text-time
embedding for SDXL) so InstantStyle's per-block IP-Adapter scales address the same blocks as
on the real models; only the widths are tiny. The VAEs keep four levels (scale factor 8) so a
``TINY_SIZE`` image gives an 8x8 latent, as the ControlNets' condition embedding expects.

The tokenizer files under ``tests/data/tiny-clip-tokenizer`` (vocab.json, merges.txt,
tokenizer_config.json, special_tokens_map.json) are written by ``write_tiny_clip_tokenizer``
below: CLIP's byte-level vocabulary (256 byte symbols, the same with ``</w>``), a few merges and
the two special tokens. To regenerate them::

    .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); import diffusion_tiny as t; \
t.write_tiny_clip_tokenizer(t.TOKENIZER_DIR)"
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

TOKENIZER_DIR = Path(__file__).resolve().parent / "data" / "tiny-clip-tokenizer"
TINY_SIZE = 64  # image side: latent 8x8 through the 4-level VAE
LORA_RANK = 4
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
# a few merges, so the BPE path runs (letter pairs, then whole short words)
MERGES = ["t h", "th e</w>", "a n", "an d</w>", "o f</w>", "i n", "in g</w>", "o n", "e r"]


def _bytes_to_unicode() -> list[str]:
    """CLIP/GPT-2's printable stand-in for each byte, in byte order."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def tiny_clip_vocab() -> dict[str, int]:
    symbols = _bytes_to_unicode()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in MERGES]
    return {token: i for i, token in enumerate([*tokens, BOS, EOS])}


def write_tiny_clip_tokenizer(folder: Path, pad_token: str = EOS) -> None:
    """The four files of a CLIP tokenizer as the SD repositories ship them (SDXL's
    ``tokenizer_2`` pads with ``!``)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = json.dumps(tiny_clip_vocab(), ensure_ascii=False, indent=1)
    (folder / "vocab.json").write_text(vocab + "\n", encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n", "utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": pad_token, "unk_token": EOS}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        **special,
    }
    for name, data in (("special_tokens_map.json", special), ("tokenizer_config.json", config)):
        (folder / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# without diffusers, importing this module (and so collecting any test module that imports
# it) is a clean skip
pytest.importorskip("diffusers", reason="the diffusion method's tests need diffusers")
pytest.importorskip("transformers", reason="the diffusion method's tests need transformers")

import diffusers  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402


@dataclasses.dataclass(frozen=True)
class TinyRepos:
    root: Path
    sdxl_base: Path
    sd15_base: Path
    ip_adapter: Path  # h94/IP-Adapter layout, both families
    controlnet_sdxl: Path
    controlnet_sd15: Path
    depth_controlnet_sdxl: Path
    depth_controlnet_sd15: Path
    depth_model: Path
    lora_sdxl: Path
    lora_sd15: Path
    photo: Path
    painting: Path
    clip: Path  # openai/clip-vit-base-patch32 layout: text and image towers, for style keywords

    def base(self, family: str) -> Path:
        return {"sdxl": self.sdxl_base, "sd15": self.sd15_base}[family]

    def controlnet(self, family: str, kind: str = "canny") -> Path:
        if kind == "depth":
            return {"sdxl": self.depth_controlnet_sdxl, "sd15": self.depth_controlnet_sd15}[family]
        return {"sdxl": self.controlnet_sdxl, "sd15": self.controlnet_sd15}[family]

    def lora(self, family: str) -> Path:
        return {"sdxl": self.lora_sdxl, "sd15": self.lora_sd15}[family]


# the arguments of pipe.load_ip_adapter for each family, as in h94/IP-Adapter
IP_ADAPTER_FILES = {
    "sdxl": {"subfolder": "sdxl_models", "weight_name": "ip-adapter_sdxl.safetensors"},
    "sd15": {"subfolder": "models", "weight_name": "ip-adapter_sd15.safetensors"},
}
# InstantStyle's ``target_blocks`` (attention-processor name prefixes). SDXL: style lives in
# up_blocks.0.attentions.1, layout in down_blocks.2.attentions.1. SD1.5 (InstantStyle's
# infer_style_sd15.py, "experimental"): style = up_blocks.1, style+layout adds down_blocks.2
# and mid_block.
INSTANTSTYLE_BLOCKS = {
    "sdxl": {"style": ("up_blocks.0.attentions.1",), "layout": ("down_blocks.2.attentions.1",)},
    "sd15": {"style": ("up_blocks.1",), "layout": ("down_blocks.2", "mid_block")},
}


def instantstyle_scale(family: str, blocks: str, scale: float) -> dict:
    """InstantStyle's blocks (``"style"`` or ``"style+layout"``) as a
    ``pipe.set_ip_adapter_scale`` dict (every other attention gets 0)."""
    if family == "sdxl":
        style = {"up": {"block_0": [0.0, scale, 0.0]}}
        layout = {"down": {"block_2": [0.0, scale]}}
    else:
        style = {"up": {"block_1": scale}}
        layout = {"down": {"block_2": scale}, "mid": scale}
    return style if blocks == "style" else {**style, **layout}


@contextmanager
def _seeded(seed: int):
    """Module initialisation from ``seed`` without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _text_encoder(seed: int, projection: bool, act: str):
    config = transformers.CLIPTextConfig(
        vocab_size=len(tiny_clip_vocab()),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,  # SDXL reads hidden_states[-2]
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        hidden_act=act,
        bos_token_id=len(tiny_clip_vocab()) - 2,
        eos_token_id=len(tiny_clip_vocab()) - 1,
        pad_token_id=len(tiny_clip_vocab()) - 1,
    )
    kind = transformers.CLIPTextModelWithProjection if projection else transformers.CLIPTextModel
    with _seeded(seed):
        return kind(config).eval()


def _image_encoder(seed: int, projection_dim: int):
    config = transformers.CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=224,  # as the real encoders: the feature extractor's 224 crop fits
        patch_size=32,
        projection_dim=projection_dim,
        hidden_act="gelu",
    )
    with _seeded(seed):
        return transformers.CLIPVisionModelWithProjection(config).eval()


def _vae(seed: int, scaling_factor: float):
    with _seeded(seed):
        return diffusers.AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 8, 16, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=TINY_SIZE,
            scaling_factor=scaling_factor,
            force_upcast=True,
        ).eval()


def _unet_sdxl(seed: int):
    with _seeded(seed):
        return diffusers.UNet2DConditionModel(
            sample_size=TINY_SIZE // 8,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(32, 64, 64),
            layers_per_block=2,
            transformer_layers_per_block=(1, 1, 2),  # real: (1, 2, 10)
            attention_head_dim=(2, 4, 4),  # heads, as SDXL's (5, 10, 20)
            use_linear_projection=True,
            cross_attention_dim=64,  # 32 (text_encoder) + 32 (text_encoder_2)
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 time ids + pooled text
            norm_num_groups=32,
        ).eval()


def _unet_sd15(seed: int):
    with _seeded(seed):
        return diffusers.UNet2DConditionModel(
            sample_size=TINY_SIZE // 8,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            block_out_channels=(32, 32, 64, 64),
            layers_per_block=2,
            attention_head_dim=4,
            cross_attention_dim=32,
            norm_num_groups=32,
        ).eval()


def _scheduler(family: str):
    """The real repositories' schedulers (SDXL: Euler, SD1.5: PNDM), same settings."""
    common = {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "steps_offset": 1,
        "prediction_type": "epsilon",
    }
    if family == "sdxl":
        return diffusers.EulerDiscreteScheduler(
            **common, interpolation_type="linear", timestep_spacing="leading"
        )
    return diffusers.PNDMScheduler(**common, set_alpha_to_one=False, skip_prk_steps=True)


def _tokenizer(folder: Path):
    return transformers.CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)


def _finish_base(folder: Path, tokenizers: dict[str, str], drop: tuple[str, ...]) -> None:
    """Make the saved folder look like the real one: the tokenizer folders hold the four files
    the real repositories ship (no tokenizer.json), and model_index.json lists no component the
    real one lacks."""
    for name, pad in tokenizers.items():
        shutil.rmtree(folder / name)
        write_tiny_clip_tokenizer(folder / name, pad_token=pad)
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    for key in drop:
        index.pop(key, None)
    if "feature_extractor" in index:  # saved as CLIPImageProcessorPil without torchvision
        index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    index_path.write_text(json.dumps(index, indent=2) + "\n")


def _unet_attn2(unet) -> list[tuple[int, str, tuple[int, int]]]:
    """(position among unet.attn_processors, name, to_k weight shape) of each cross-attention:
    the original IP-Adapter numbers its layers by that position (1, 3, 5, ...)."""
    modules = dict(unet.named_modules())
    out = []
    for position, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            module = modules[name.removesuffix(".processor")]
            out.append((position, name, tuple(module.to_k.weight.shape)))
    return out


def _ip_adapter_weights(unet, image_embed_dim: int, seed: int) -> dict[str, torch.Tensor]:
    """An IP-Adapter (base, 4 image tokens) in h94's safetensors format: ``image_proj.proj``
    (Linear image_embed_dim -> 4 x cross_dim), ``image_proj.norm`` (LayerNorm) and, for each
    cross-attention, ``ip_adapter.<n>.to_k_ip.weight`` / ``to_v_ip.weight``; float16 like the
    real files."""
    g = torch.Generator().manual_seed(seed)
    cross = unet.config.cross_attention_dim
    weights = {
        "image_proj.proj.weight": torch.randn(4 * cross, image_embed_dim, generator=g) * 0.1,
        "image_proj.proj.bias": torch.randn(4 * cross, generator=g) * 0.1,
        "image_proj.norm.weight": 1 + torch.randn(cross, generator=g) * 0.1,
        "image_proj.norm.bias": torch.randn(cross, generator=g) * 0.1,
    }
    for position, _name, shape in _unet_attn2(unet):
        assert position % 2 == 1, "attn1/attn2 must alternate, as the real loader assumes"
        for proj in ("to_k_ip", "to_v_ip"):
            weights[f"ip_adapter.{position}.{proj}.weight"] = torch.randn(*shape, generator=g) * 0.2
    return {k: v.to(torch.float16).contiguous() for k, v in weights.items()}


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def _lora_weights(unet, seed: int) -> dict[str, torch.Tensor]:
    """A rank-4 LoRA on every UNet attention projection, in the diffusers/peft format
    ``unet.<module>.lora_A.weight`` (rank x in) / ``lora_B.weight`` (out x rank), lora_B
    non-zero so the LoRA changes the output."""
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, module in unet.named_modules():
        if ".attn" in name and name.endswith(LORA_TARGETS) and isinstance(module, torch.nn.Linear):
            out_f, in_f = module.weight.shape
            weights[f"unet.{name}.lora_A.weight"] = torch.randn(LORA_RANK, in_f, generator=g) * 0.2
            weights[f"unet.{name}.lora_B.weight"] = torch.randn(out_f, LORA_RANK, generator=g) * 0.2
    return {k: v.to(torch.float16).contiguous() for k, v in weights.items()}


def _controlnet(unet, seed: int):
    """A ControlNet copied from ``unet`` (as ``ControlNetModel.from_unet`` does), its zero
    convolutions made random so the control image matters as with trained weights."""
    with _seeded(seed):
        net = diffusers.ControlNetModel.from_unet(
            unet, conditioning_embedding_out_channels=(8, 8, 16, 16)
        )
        zeros = [
            *net.controlnet_down_blocks,
            net.controlnet_mid_block,
            net.controlnet_cond_embedding.conv_out,
        ]
        with torch.no_grad():
            for module in zeros:
                for p in module.parameters():
                    p.normal_(0.0, 0.05)
    return net.eval()


def _build_around_unet(root: Path, family: str, unet, seed: int, projection_dim: int) -> None:
    """What each family adds around its UNet: the canny and depth ControlNets, the IP-Adapter
    (image encoder and weights, in h94/IP-Adapter's layout) and a style LoRA."""
    _controlnet(unet, seed + 5).save_pretrained(
        str(root / f"controlnet-canny-{family}"), safe_serialization=True
    )
    _controlnet(unet, seed + 9).save_pretrained(
        str(root / f"controlnet-depth-{family}"), safe_serialization=True
    )
    encoder = _image_encoder(seed + 6, projection_dim=projection_dim)
    files = IP_ADAPTER_FILES[family]
    ip = root / "ip-adapter" / files["subfolder"]
    encoder.save_pretrained(str(ip / "image_encoder"), safe_serialization=True)
    weights = _ip_adapter_weights(unet, encoder.config.projection_dim, seed + 7)
    safetensors.torch.save_file(weights, str(ip / files["weight_name"]))
    lora = _lora_weights(unet, seed + 8)
    safetensors.torch.save_file(lora, str(root / f"lora-{family}.safetensors"), {"format": "pt"})


def _build_sdxl(root: Path, seed: int) -> None:
    unet = _unet_sdxl(seed + 1)
    pipe = diffusers.StableDiffusionXLPipeline(
        vae=_vae(seed + 2, scaling_factor=0.13025),
        text_encoder=_text_encoder(seed + 3, projection=False, act="quick_gelu"),
        text_encoder_2=_text_encoder(seed + 4, projection=True, act="gelu"),
        tokenizer=_tokenizer(TOKENIZER_DIR),
        tokenizer_2=_tokenizer(TOKENIZER_DIR),
        unet=unet,
        scheduler=_scheduler("sdxl"),
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(str(root / "sdxl-base"), safe_serialization=True)
    _finish_base(
        root / "sdxl-base",
        {"tokenizer": EOS, "tokenizer_2": "!"},
        drop=("image_encoder", "feature_extractor"),
    )
    _build_around_unet(root, "sdxl", unet, seed, projection_dim=32)


def _build_sd15(root: Path, seed: int) -> None:
    unet = _unet_sd15(seed + 11)
    pipe = diffusers.StableDiffusionPipeline(
        vae=_vae(seed + 12, scaling_factor=0.18215),
        text_encoder=_text_encoder(seed + 13, projection=False, act="quick_gelu"),
        tokenizer=_tokenizer(TOKENIZER_DIR),
        unet=unet,
        scheduler=_scheduler("sd15"),
        safety_checker=None,
        feature_extractor=transformers.CLIPImageProcessor(),  # 224, as the real repo's
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(root / "sd15-base"), safe_serialization=True)
    _finish_base(root / "sd15-base", {"tokenizer": EOS}, drop=("image_encoder",))
    _build_around_unet(root, "sd15", unet, seed + 10, projection_dim=24)


def _build_clip(root: Path, seed: int) -> Path:
    """A tiny CLIPModel (text and image towers) in the layout of openai/clip-vit-base-patch32,
    with the tiny tokenizer's four files."""
    folder = root / "clip-vit-base-patch32"
    vocab = len(tiny_clip_vocab())
    config = transformers.CLIPConfig(
        text_config={"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 37,
                     "num_hidden_layers": 2, "num_attention_heads": 4,
                     "max_position_embeddings": 77, "bos_token_id": vocab - 2,
                     "eos_token_id": vocab - 1, "pad_token_id": vocab - 1},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "image_size": 224, "patch_size": 32},
        projection_dim=16,
    )  # fmt: skip
    with _seeded(seed):
        model = transformers.CLIPModel(config).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    write_tiny_clip_tokenizer(folder)
    return folder


def _build_depth(root: Path, seed: int) -> Path:
    """A tiny Depth Anything (DINOv2 backbone, DPT neck and relative-depth head) in the layout
    of depth-anything/Depth-Anything-V2-Small-hf, with its image processor's file (the real
    one's settings: long side to a multiple of 14, bicubic, ImageNet mean and std), at 56 px."""
    folder = root / "depth-anything"
    backbone = transformers.Dinov2Config(
        hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
        patch_size=14, image_size=56, out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )  # fmt: skip
    config = transformers.DepthAnythingConfig(
        backbone_config=backbone, neck_hidden_sizes=[8, 16, 16, 16], reassemble_hidden_size=16,
        fusion_hidden_size=16, head_hidden_size=8, depth_estimation_type="relative",
    )  # fmt: skip
    with _seeded(seed):
        model = transformers.DepthAnythingForDepthEstimation(config).eval()
        with torch.no_grad():  # a depth that varies over the picture (random init gives ~0)
            model.head.conv3.weight.normal_(0.0, 1.0)
            model.head.conv3.bias.fill_(0.5)
    model.save_pretrained(str(folder), safe_serialization=True)
    processor = transformers.DPTImageProcessor(
        do_resize=True, size={"height": 56, "width": 56}, keep_aspect_ratio=True,
        ensure_multiple_of=14, resample=3, do_rescale=True, do_normalize=True,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_pad=False,
    )  # fmt: skip
    processor.save_pretrained(str(folder))
    return folder


def build_tiny_repos(root: Path, seed: int = 0) -> TinyRepos:
    """Write every tiny repository under ``root`` (deterministic for a given ``seed``)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _build_sdxl(root, seed)
    _build_sd15(root, seed)
    tiny_photo().save(root / "photo.png")
    tiny_painting().save(root / "painting.png")
    return TinyRepos(
        root=root,
        sdxl_base=root / "sdxl-base",
        sd15_base=root / "sd15-base",
        ip_adapter=root / "ip-adapter",
        controlnet_sdxl=root / "controlnet-canny-sdxl",
        controlnet_sd15=root / "controlnet-canny-sd15",
        depth_controlnet_sdxl=root / "controlnet-depth-sdxl",
        depth_controlnet_sd15=root / "controlnet-depth-sd15",
        depth_model=_build_depth(root, seed + 30),
        lora_sdxl=root / "lora-sdxl.safetensors",
        lora_sd15=root / "lora-sd15.safetensors",
        photo=root / "photo.png",
        painting=root / "painting.png",
        clip=_build_clip(root, seed + 40),
    )


def tiny_photo(size: int = TINY_SIZE) -> Image.Image:
    """A 'photo': a sky gradient, a green hill, a dark house and a sun (clear edges)."""
    y = np.linspace(0, 1, size)[:, None, None]
    sky = (np.array([90, 150, 230]) * (1 - y) + np.array([200, 220, 250]) * y).astype(np.uint8)
    image = Image.fromarray(np.broadcast_to(sky, (size, size, 3)).copy())
    draw = ImageDraw.Draw(image)
    s = size / 64
    draw.ellipse((-16 * s, 40 * s, 80 * s, 90 * s), fill=(60, 140, 60))
    draw.rectangle((20 * s, 28 * s, 40 * s, 48 * s), fill=(80, 50, 40))
    draw.polygon([(18 * s, 28 * s), (30 * s, 18 * s), (42 * s, 28 * s)], fill=(150, 40, 30))
    draw.ellipse((46 * s, 6 * s, 58 * s, 18 * s), fill=(250, 220, 80))
    return image


def tiny_painting(size: int = TINY_SIZE) -> Image.Image:
    """A 'painting': bold diagonal colour bands with deterministic brush noise."""
    yy, xx = np.mgrid[0:size, 0:size]
    band = ((xx + yy) // max(size // 8, 1)) % 4
    palette = np.array([[230, 80, 40], [250, 200, 60], [40, 90, 170], [30, 30, 60]])
    noise = np.random.default_rng(0).integers(-25, 26, (size, size, 3))
    return Image.fromarray(np.clip(palette[band] + noise, 0, 255).astype(np.uint8))


def tiny_edges(image: Image.Image | None = None) -> Image.Image:
    """A white-on-black edge map of ``image`` (default the photo), a canny stand-in."""
    gray = (tiny_photo() if image is None else image).convert("L").filter(ImageFilter.FIND_EDGES)
    return gray.point(lambda v: 255 if v > 24 else 0).convert("RGB")


@pytest.fixture(scope="session", name="tiny_repos")
def tiny_repos_fixture(tmp_path_factory) -> TinyRepos:
    """Every tiny repository, built once per test session. Import it in a test module with
    ``from diffusion_tiny import tiny_repos_fixture  # noqa: F401`` and ask for ``tiny_repos``
    (importing the alias ``tiny_repos`` works too, but ruff then flags F811 at each use)."""
    return build_tiny_repos(tmp_path_factory.mktemp("tiny_repos"))


tiny_repos = tiny_repos_fixture


def record_calls(monkeypatch, pipe) -> dict:
    """The keyword arguments of ``pipe``'s next call (the call itself still runs)."""
    seen: dict = {}
    real_call = type(pipe).__call__

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", spy)
    return seen


HUB_NAMES = {
    "sdxl_base": "stabilityai/stable-diffusion-xl-base-1.0",
    "sd15_base": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "ip_adapter": "h94/IP-Adapter",
    "controlnet_sdxl": "diffusers/controlnet-canny-sdxl-1.0",
    "controlnet_sd15": "lllyasviel/sd-controlnet-canny",
    "depth_controlnet_sdxl": "diffusers/controlnet-depth-sdxl-1.0",
    "depth_controlnet_sd15": "lllyasviel/control_v11f1p_sd15_depth",
    "depth_model": "depth-anything/Depth-Anything-V2-Small-hf",
    "clip": "openai/clip-vit-base-patch32",
}
"""The Hub ids the method's defaults name, for each tiny repository."""


def install_in_hub_cache(repos: TinyRepos, cache: Path) -> Path:
    """Lay the tiny repositories out as the Hugging Face cache does
    (``models--ORG--NAME/refs/main`` naming a snapshot folder), so the method's defaults (Hub
    ids) resolve to them through ``snapshot_download(local_files_only=True)``, as the real
    repositories would after ``impasto download``."""
    revision = "0" * 40
    for field, hub_id in HUB_NAMES.items():
        folder = Path(cache) / ("models--" + hub_id.replace("/", "--"))
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text(revision)
        snapshot = folder / "snapshots" / revision
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        if not snapshot.exists():
            snapshot.symlink_to(getattr(repos, field), target_is_directory=True)
    return Path(cache)
