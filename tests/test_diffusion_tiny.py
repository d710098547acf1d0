"""The tiny diffusion repositories of ``diffusion_tiny``: laid out as the real Hugging Face
repositories, loaded through the same diffusers calls as real weights (ControlNet, img2img
pipelines, IP-Adapter with InstantStyle block scales, a style LoRA), one 2-step generation per
family, deterministic. CPU only, no network."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("diffusers", reason="the diffusion extra (diffusers) is not installed")
pytest.importorskip("transformers", reason="the diffusion extra (transformers) is not installed")

import diffusers  # noqa: E402
import diffusion_tiny as tiny  # noqa: E402
import torch  # noqa: E402
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0  # noqa: E402
from diffusion_tiny import tiny_repos_fixture  # noqa: E402, F401  (the session fixture)
from safetensors import safe_open  # noqa: E402

# diffusers' Euler scheduler calls np.array on a tensor (numpy 2 deprecation), real weights too
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

FAMILIES = ["sdxl", "sd15"]
# an up block without attentions: a scale dict naming it is silently ignored by diffusers
NO_ATTENTION_UP = {"sdxl": "block_2", "sd15": "block_0"}
XL = {
    "img2img": diffusers.StableDiffusionXLImg2ImgPipeline,
    "control": diffusers.StableDiffusionXLControlNetImg2ImgPipeline,
}
SD15 = {
    "img2img": diffusers.StableDiffusionImg2ImgPipeline,
    "control": diffusers.StableDiffusionControlNetImg2ImgPipeline,
}

# the files each real repository has (the part of it the method reads)
LAYOUT = {
    "sdxl_base": [
        "model_index.json",
        "scheduler/scheduler_config.json",
        *(
            f"{c}/{f}"
            for c in ("text_encoder", "text_encoder_2")
            for f in ("config.json", "model.safetensors")
        ),
        *(f"{t}/{f}" for t in ("tokenizer", "tokenizer_2") for f in tiny.TOKENIZER_FILES),
        *(
            f"{c}/{f}"
            for c in ("unet", "vae")
            for f in ("config.json", "diffusion_pytorch_model.safetensors")
        ),
    ],
    "sd15_base": [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "feature_extractor/preprocessor_config.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        *(f"tokenizer/{f}" for f in tiny.TOKENIZER_FILES),
        *(
            f"{c}/{f}"
            for c in ("unet", "vae")
            for f in ("config.json", "diffusion_pytorch_model.safetensors")
        ),
    ],
    "ip_adapter": [
        "sdxl_models/ip-adapter_sdxl.safetensors",
        "sdxl_models/image_encoder/config.json",
        "sdxl_models/image_encoder/model.safetensors",
        "models/ip-adapter_sd15.safetensors",
        "models/image_encoder/config.json",
        "models/image_encoder/model.safetensors",
    ],
    "controlnet_sdxl": ["config.json", "diffusion_pytorch_model.safetensors"],
    "controlnet_sd15": ["config.json", "diffusion_pytorch_model.safetensors"],
    "depth_controlnet_sdxl": ["config.json", "diffusion_pytorch_model.safetensors"],
    "depth_controlnet_sd15": ["config.json", "diffusion_pytorch_model.safetensors"],
    "depth_model": ["config.json", "model.safetensors", "preprocessor_config.json"],
}


def load_pipe(repos, family: str, control: bool = True, lora: bool = False):
    """The pipeline as the method builds it: (ControlNet,) img2img, IP-Adapter, style blocks."""
    kinds = XL if family == "sdxl" else SD15
    if control:
        controlnet = diffusers.ControlNetModel.from_pretrained(
            repos.controlnet(family), local_files_only=True
        )
        pipe = kinds["control"].from_pretrained(
            repos.base(family), controlnet=controlnet, local_files_only=True
        )
    else:
        pipe = kinds["img2img"].from_pretrained(repos.base(family), local_files_only=True)
    pipe.load_ip_adapter(
        str(repos.ip_adapter),
        image_encoder_folder="image_encoder",
        local_files_only=True,
        **tiny.IP_ADAPTER_FILES[family],
    )
    pipe.set_ip_adapter_scale(tiny.instantstyle_scale(family, "style", 0.6))
    pipe.set_progress_bar_config(disable=True)
    if lora:
        pipe.load_lora_weights(str(repos.lora(family)), adapter_name="style0")
        pipe.set_adapters(["style0"], adapter_weights=[0.8])
    return pipe


def generate(pipe, control: bool = True, seed: int = 0, **changes) -> torch.Tensor:
    kwargs = {
        "prompt": "",
        "image": tiny.tiny_photo(),
        "ip_adapter_image": tiny.tiny_painting(),
        "strength": 0.6,
        "num_inference_steps": 2,
        "guidance_scale": 5.0,
        "generator": torch.Generator().manual_seed(seed),
        "output_type": "pt",
    }
    if control:
        kwargs["control_image"] = tiny.tiny_edges()
    kwargs.update(changes)
    return pipe(**kwargs).images


def ip_scales(pipe) -> dict[str, float]:
    return {
        name.removesuffix(".processor"): proc.scale[0]
        for name, proc in pipe.unet.attn_processors.items()
        if isinstance(proc, IPAdapterAttnProcessor2_0)
    }


def test_the_files_are_where_the_real_repositories_put_them(tiny_repos):
    for field, files in LAYOUT.items():
        folder = getattr(tiny_repos, field)
        missing = [f for f in files if not (folder / f).is_file()]
        assert not missing, f"{field}: {missing}"
    for name in ("sdxl_base", "sd15_base"):
        assert not (getattr(tiny_repos, name) / "tokenizer" / "tokenizer.json").exists()
    for path in (tiny_repos.lora_sdxl, tiny_repos.lora_sd15, tiny_repos.photo, tiny_repos.painting):
        assert path.is_file()
    xl = json.loads((tiny_repos.sdxl_base / "model_index.json").read_text())
    sd = json.loads((tiny_repos.sd15_base / "model_index.json").read_text())
    assert xl["_class_name"] == "StableDiffusionXLPipeline" and "image_encoder" not in xl
    assert sd["_class_name"] == "StableDiffusionPipeline" and sd["requires_safety_checker"] is False
    assert sd["feature_extractor"] == ["transformers", "CLIPImageProcessor"]
    pad = json.loads((tiny_repos.sdxl_base / "tokenizer_2" / "tokenizer_config.json").read_text())
    assert pad["pad_token"] == "!"  # as SDXL's second tokenizer


def test_shipped_tokenizer_files_are_the_generated_ones(tmp_path):
    tiny.write_tiny_clip_tokenizer(tmp_path)
    for name in tiny.TOKENIZER_FILES:
        assert (tmp_path / name).read_bytes() == (tiny.TOKENIZER_DIR / name).read_bytes(), name


def test_tokenizer_loads_and_pads_to_77():
    import transformers

    tokenizer = transformers.CLIPTokenizer.from_pretrained(
        str(tiny.TOKENIZER_DIR), local_files_only=True
    )
    ids = tokenizer("The cat and the dog!", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == tokenizer.bos_token_id
    assert tokenizer.convert_ids_to_tokens(ids[1]) == "the</w>"  # lower-cased, merged
    assert max(ids) < len(tiny.tiny_clip_vocab())


def test_the_ip_adapter_files_have_the_real_key_format(tiny_repos):
    for family, files in tiny.IP_ADAPTER_FILES.items():
        path = tiny_repos.ip_adapter / files["subfolder"] / files["weight_name"]
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            dtypes = {f.get_tensor(k).dtype for k in keys}
            proj = f.get_slice("image_proj.proj.weight").get_shape()
        proj_keys = {k for k in keys if k.startswith("image_proj.")}
        assert proj_keys == {
            f"image_proj.{m}.{p}" for m in ("proj", "norm") for p in ("weight", "bias")
        }
        layers = sorted({int(k.split(".")[1]) for k in keys - proj_keys})
        assert layers == list(range(1, 2 * len(layers), 2)), family  # 1, 3, 5, ...
        assert all(
            f"ip_adapter.{n}.{w}.weight" in keys for n in layers for w in ("to_k_ip", "to_v_ip")
        )
        assert dtypes == {torch.float16}
        encoder = json.loads((path.parent / "image_encoder" / "config.json").read_text())
        assert proj[1] == encoder["projection_dim"]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_unet_keeps_the_blocks_instantstyle_addresses(tiny_repos, family):
    unet = diffusers.UNet2DConditionModel.from_pretrained(
        tiny_repos.base(family), subfolder="unet", local_files_only=True
    )
    attentions = {
        f"{side}.block_{i}": len(block.attentions) if hasattr(block, "attentions") else 0
        for side, blocks in (("down", unet.down_blocks), ("up", unet.up_blocks))
        for i, block in enumerate(blocks)
    }
    if family == "sdxl":  # as SDXL base: no attention in the outer blocks
        assert attentions == {
            "down.block_0": 0,
            "down.block_1": 2,
            "down.block_2": 2,
            "up.block_0": 3,
            "up.block_1": 3,
            "up.block_2": 0,
        }
        assert unet.config.addition_embed_type == "text_time"
    else:  # as SD1.5: no attention in the innermost blocks
        assert attentions == {
            "down.block_0": 2,
            "down.block_1": 2,
            "down.block_2": 2,
            "down.block_3": 0,
            "up.block_0": 0,
            "up.block_1": 3,
            "up.block_2": 3,
            "up.block_3": 3,
        }
        assert len(unet.mid_block.attentions) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_instantstyle_scales_reach_exactly_its_blocks(tiny_repos, family):
    """The set_ip_adapter_scale dicts switch on exactly the attentions InstantStyle targets."""
    pipe = load_pipe(tiny_repos, family, control=False)  # style blocks at 0.6
    blocks = tiny.INSTANTSTYLE_BLOCKS[family]
    names = ip_scales(pipe).keys()
    for which, targets in (
        ("style", blocks["style"]),
        ("style+layout", blocks["style"] + blocks["layout"]),
    ):
        if which != "style":
            pipe.set_ip_adapter_scale(tiny.instantstyle_scale(family, which, 0.6))
        expected = {n for n in names if n.startswith(targets)}
        assert expected, which
        assert {n: s for n, s in ip_scales(pipe).items() if s} == dict.fromkeys(expected, 0.6)
    # a pitfall kept in view: naming a block that has no attention raises nothing and turns
    # the IP-Adapter off everywhere (unnamed blocks get 0)
    pipe.set_ip_adapter_scale({"up": {NO_ATTENTION_UP[family]: 1.0}})
    assert set(ip_scales(pipe).values()) == {0.0}


@pytest.mark.parametrize("family", FAMILIES)
def test_img2img_without_controlnet_runs(tiny_repos, family):
    pipe = load_pipe(tiny_repos, family, control=False)
    out = generate(pipe, control=False)
    assert out.shape == (1, 3, tiny.TINY_SIZE, tiny.TINY_SIZE) and torch.isfinite(out).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_with_ip_adapter_controlnet_and_lora(tiny_repos, family):
    pipe = load_pipe(tiny_repos, family, lora=True)
    first = generate(pipe)
    assert first.shape == (1, 3, tiny.TINY_SIZE, tiny.TINY_SIZE)
    assert torch.isfinite(first).all() and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, generate(pipe))  # same seed, same output
    # every input matters: the style image, the edges, the LoRA
    assert not torch.allclose(first, generate(pipe, ip_adapter_image=tiny.tiny_photo()), atol=1e-4)
    edges = tiny.tiny_edges(tiny.tiny_painting())
    assert not torch.allclose(first, generate(pipe, control_image=edges), atol=1e-4)
    pipe.fuse_lora(lora_scale=1.0, adapter_names=["style0"])
    fused = generate(pipe)
    assert torch.allclose(first, fused, atol=1e-3)  # 0.8 x LoRA, fused into the weights
    pipe.unfuse_lora()
    pipe.unload_lora_weights()
    plain = generate(pipe)
    assert not torch.allclose(first, plain, atol=1e-3)


def test_building_is_deterministic(tiny_repos, tmp_path):
    again = tiny.build_tiny_repos(tmp_path)  # the fixture's seed
    files = sorted(p.relative_to(again.root) for p in again.root.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(tiny_repos.root) for p in tiny_repos.root.rglob("*") if p.is_file()
    )
    changed = [
        f for f in files if (again.root / f).read_bytes() != (tiny_repos.root / f).read_bytes()
    ]
    assert not changed
    one, other = tiny._unet_sd15(0).state_dict(), tiny._unet_sd15(1).state_dict()
    assert not torch.equal(one["conv_in.weight"], other["conv_in.weight"])  # the seed matters
