"""Fast style transfer: the network, the photo folder, training with resume, model folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from impasto import model_folder, training
from impasto.errors import Cancelled, InputError
from impasto.methods import fast
from impasto.model_folder import load_model_folder, save_model_folder
from impasto.nn import layers
from impasto.photos import PhotoSet, find_photos

ASSETS = Path(__file__).resolve().parents[1] / "src" / "impasto" / "assets"
SMALL = fast.NetworkConfig(channels=4, residual_blocks=1)

# --------------------------------------------------------------------------- the network


def test_output_keeps_any_size_and_stays_in_range():
    torch.manual_seed(0)
    network = fast.TransformNet(SMALL).eval()
    for shape in [(1, 3, 37, 50), (2, 3, 16, 16), (1, 3, 21, 64)]:
        with torch.no_grad():
            out = network(torch.rand(*shape))
        assert out.shape == shape
        assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()


def test_no_transposed_convolutions_and_the_papers_shape():
    network = fast.TransformNet()
    kinds = {type(module) for module in network.modules()}
    assert torch.nn.ConvTranspose2d not in kinds
    assert len(network.residuals) == 5
    convs = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in (convs[0], convs[-1])] == [9, 9]
    assert max(c.out_channels for c in convs) == 128  # 32 -> 64 -> 128 as in Johnson et al.


def test_instance_norm_matches_the_definition():
    torch.manual_seed(1)
    norm = layers.InstanceNorm(5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(2, 5, 7, 9) * 3 + 1
    expected = F.instance_norm(x, weight=norm.weight, bias=norm.bias, eps=1e-5)
    assert torch.allclose(norm(x), expected, atol=1e-5)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert torch.allclose(norm(channels_last), expected, atol=1e-5)
    half = norm(x.bfloat16())
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), expected, atol=0.1)


def test_channels_last_gives_the_same_result():
    torch.manual_seed(2)
    network = fast.TransformNet(SMALL).eval()
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        plain = network(x)
        network_cl = network.to(memory_format=torch.channels_last)
        fast_layout = network_cl(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(plain, fast_layout, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("kernel", layers.NORM_KERNELS)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_every_norm_kernel_is_instance_norm_and_keeps_the_layout(batch, kernel, layout):
    torch.manual_seed(batch)
    norm = layers.InstanceNorm(6)
    norm.kernel = kernel
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(batch, 6, 11, 7) * 4 + 2
    expected = F.instance_norm(x, weight=norm.weight, bias=norm.bias, eps=1e-5)
    out = norm(x.contiguous(memory_format=layout))
    assert torch.allclose(out, expected, atol=1e-5)
    assert out.is_contiguous(memory_format=layout)
    half = norm(x.bfloat16().contiguous(memory_format=layout))
    assert half.dtype == torch.bfloat16
    assert (half.float() - expected).abs().max() < 0.1


def test_half_precision_norms_survive_a_large_spread():
    """fp16 holds values up to 65504: a variance of 1000^2 would overflow, a std does not."""
    x = torch.randn(2, 4, 9, 9) * 1000 + 50
    expected = F.instance_norm(x)
    norm = layers.InstanceNorm(4).half()
    for kernel in layers.NORM_KERNELS:
        norm.kernel = kernel
        out = norm(x.half()).float()
        assert torch.isfinite(out).all(), kernel
        assert (out - expected).abs().max() < 0.01, kernel


def test_an_unknown_padding_is_refused():
    with pytest.raises(ValueError, match="unknown padding"):
        layers.PaddedConv2d(3, 4, 3, padding="replicate")


@pytest.mark.parametrize("pad", [1, 2, 4])
@pytest.mark.parametrize("shape", [(1, 5, 7, 9), (2, 3, 5, 12), (1, 8, 6, 5)])
def test_reflect_pad_equals_torch_and_keeps_the_layout(pad, shape):
    x = torch.arange(np.prod(shape), dtype=torch.float32).reshape(shape)
    for layout in (torch.contiguous_format, torch.channels_last):
        xi = x.contiguous(memory_format=layout)
        out = layers.reflect_pad(xi, pad)
        assert torch.equal(out, F.pad(x, (pad,) * 4, mode="reflect"))
        assert out.is_contiguous(memory_format=layout)
    with pytest.raises(ValueError, match="reflection padding"):
        layers.reflect_pad(torch.rand(1, 2, 3, 8), 3)


@pytest.mark.parametrize("padding", layers.PADDING_CHOICES)
def test_layout_kernels_give_the_same_network_output(padding):
    torch.manual_seed(3)
    network = fast.TransformNet(fast.NetworkConfig(4, 1, padding, 5)).eval()
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        plain = network(x)
        layers.set_kernels(network, "batch_norm", "layout", 8)
        network.to(memory_format=torch.channels_last)
        layout = network(x.contiguous(memory_format=torch.channels_last))
        single = network(x[:1].contiguous(memory_format=torch.channels_last))  # batch_norm path
    assert torch.allclose(plain, layout, atol=1e-5)
    assert torch.allclose(plain[:1], single, atol=1e-5)
    with pytest.raises(ValueError, match="unknown kernels"):
        layers.set_kernels(network, "layer_norm")


def test_the_cuda_inference_path_uses_the_layout_keeping_kernels():
    """Which kernels each inference path gets; CUDA itself is exercised by benchmarks/."""
    assert layers.inference_kernels("cuda", True, False) == ("batch_norm", "layout", 1)
    assert layers.inference_kernels("cuda", False, False) == ("group_norm", "torch", 1)
    assert layers.inference_kernels("cuda", True, True) == ("group_norm", "torch", 8)
    assert layers.inference_kernels("cpu", True, False) == ("group_norm", "torch", 1)
    network = fast.TransformNet(SMALL)
    stylizer = fast.Stylizer(fast.FastModel(network, {}, Path("m")), "cpu")
    kinds = {(m.kernel if isinstance(m, layers.InstanceNorm) else (m.pad_kernel, m.align_channels))
             for m in stylizer.network.modules()
             if isinstance(m, layers.InstanceNorm | layers.PaddedConv2d)}  # fmt: skip
    assert kinds == {"group_norm", ("torch", 1)}


# --------------------------------------------------------------------------- photos


def write_photo(path: Path, seed: int, size=(48, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def photo_folder(tmp_path):
    root = tmp_path / "photos"
    for i in range(5):
        write_photo(root / f"p{i}.png", i)
    write_photo(root / "nested" / "deeper" / "q.jpg", 9, size=(60, 36))
    (root / "broken.jpg").write_bytes(b"not an image at all")
    (root / "notes.txt").write_text("ignored: not an image extension")
    write_photo(root / ".hidden" / "h.png", 11)
    return root


def test_photos_are_found_recursively_in_a_stable_order(photo_folder):
    names = [p.relative_to(photo_folder).as_posix() for p in find_photos(photo_folder)]
    assert names == ["broken.jpg", "nested/deeper/q.jpg", "p0.png", "p1.png", "p2.png", "p3.png",
                     "p4.png"]  # fmt: skip


def test_unreadable_photos_are_skipped_and_counted(photo_folder):
    photos = PhotoSet.load(photo_folder, 32)
    assert photos.skipped == ["broken.jpg"]
    assert len(photos.photos) == 6
    assert all(min(p.shape[-2:]) == 32 and p.dtype == torch.uint8 for p in photos.photos)
    assert photos.description()["skipped"] == 1


def test_no_readable_photo_is_an_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"junk")
    with pytest.raises(InputError, match="none of the 1 image files"):
        PhotoSet.load(tmp_path, 32)
    with pytest.raises(InputError, match="not found"):
        PhotoSet.load(tmp_path / "missing", 32)


def test_batches_depend_only_on_seed_and_step(photo_folder):
    first, second = PhotoSet.load(photo_folder, 32), PhotoSet.load(photo_folder, 32)
    a = first.batch(7, 3, 24, seed=5)
    assert a.shape == (3, 3, 24, 24) and a.dtype == torch.float32
    assert torch.equal(a, second.batch(7, 3, 24, seed=5))
    assert not torch.equal(a, first.batch(8, 3, 24, seed=5))
    assert not torch.equal(a, first.batch(7, 3, 24, seed=6))


def test_an_epoch_visits_every_photo_once(photo_folder):
    photos = PhotoSet.load(photo_folder, 32)
    # Full-size crops of a 32x32 centre would still vary; compare each crop with its photo.
    seen = []
    for step in range(6):
        crop = photos.batch(step, 1, 32, seed=3)[0]
        matches = [
            i for i, p in enumerate(photos.photos)
            if any(torch.equal((crop * 255).round().to(torch.uint8), window)
                   for window in _windows(p, 32))
        ]  # fmt: skip
        seen.extend(matches)
    assert sorted(set(seen)) == list(range(6))


def _windows(photo: torch.Tensor, crop: int):
    height, width = photo.shape[-2:]
    for top in range(height - crop + 1):
        for left in range(width - crop + 1):
            window = photo[:, top : top + crop, left : left + crop]
            yield window
            yield window.flip(-1)


# --------------------------------------------------------------------------- training


def tiny_config(**changes) -> fast.FastTrainConfig:
    values = dict(size=24, batch=2, steps=6, channels=4, residual_blocks=1, backbone="tiny",
                  checkpoint_every=2, preview_every=3, device="cpu",
                  learning_rate=1e-2)  # fmt: skip
    values.update(changes)
    return fast.FastTrainConfig(**values)


@pytest.fixture
def style():
    torch.manual_seed(3)
    return torch.rand(1, 3, 40, 40)


@pytest.fixture
def photos(photo_folder):
    return PhotoSet.load(photo_folder, 24)


def weights_of(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = weights_of(a), weights_of(b)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_training_writes_a_complete_model_folder(tmp_path, style, photos, one_thread):
    result = fast.train(style, photos, tmp_path / "model", tiny_config(),
                        style_info={"file": "s.png", "sha256": "ab" * 32})  # fmt: skip
    folder = tmp_path / "model"
    assert result.steps == 6 and result.resumed_from == 0 and len(result.history) == 6
    config = json.loads((folder / "config.json").read_text())
    assert config["method"] == "fast" and config["network"]["channels"] == 4
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["style"]["sha256"] == "ab" * 32
    assert metadata["backbone"] == "tiny" and metadata["steps_done"] == 6
    assert metadata["training"]["batch"] == 2 and metadata["data"]["photos"] == 6
    assert metadata["impasto_version"] and "licence" in metadata["license"]
    assert sorted(p.name for p in (folder / "training" / "previews").iterdir()) == [
        "step-0000003.png", "step-0000006.png"]  # fmt: skip
    model = fast.load_model(folder)
    out = fast.stylize(torch.rand(1, 3, 30, 20), model)
    assert out.shape == (1, 3, 30, 20)


def test_a_cancelled_run_resumes_to_the_same_weights(tmp_path, style, photos, one_thread):
    fast.train(style, photos, tmp_path / "straight", tiny_config())

    def cancel_at_3(event):
        return event.step != 3  # 3 is not a checkpoint step: cancel saves one there

    with pytest.raises(Cancelled):
        fast.train(style, photos, tmp_path / "stopped", tiny_config(), progress=cancel_at_3)
    assert int(training.read_checkpoint(tmp_path / "stopped")["step"]) == 3
    assert not (tmp_path / "stopped" / "config.json").exists()  # no model until it finishes
    result = fast.train(style, photos, tmp_path / "stopped", tiny_config(), resume=True)
    assert result.resumed_from == 3 and len(result.history) == 3
    assert_same_weights(tmp_path / "straight", tmp_path / "stopped")


def test_a_stopped_run_becomes_a_model_with_resume_and_the_step_reached(
    tmp_path, style, photos, one_thread
):
    """Ending early on purpose: stop, then --resume --steps <step reached> writes the model
    folder from the checkpoint without training more, losses included."""
    seen = {}

    def cancel_at_3(event):
        seen[event.step] = event.losses
        return event.step != 3

    with pytest.raises(Cancelled):
        fast.train(style, photos, tmp_path / "m", tiny_config(), progress=cancel_at_3)
    saved = training.read_checkpoint(tmp_path / "m")["model"]
    result = fast.train(style, photos, tmp_path / "m", tiny_config(steps=3), resume=True)
    assert result.steps == 3 and result.resumed_from == 3 and result.history == []
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert metadata["steps_done"] == 3 and metadata["training"]["steps"] == 3
    assert metadata["final_losses"] == seen[3]
    weights = weights_of(tmp_path / "m")
    assert weights.keys() == saved.keys()
    assert all(torch.equal(weights[key], saved[key]) for key in saved)


def test_a_crash_between_checkpoints_resumes_to_the_same_weights(
    tmp_path, style, photos, one_thread
):
    fast.train(style, photos, tmp_path / "straight", tiny_config())

    def crash_at_5(event):
        if event.step == 5:
            raise KeyboardInterrupt  # like a kill: nothing is saved after the step-4 checkpoint

    with pytest.raises(KeyboardInterrupt):
        fast.train(style, photos, tmp_path / "crashed", tiny_config(), progress=crash_at_5)
    assert int(training.read_checkpoint(tmp_path / "crashed")["step"]) == 4
    fast.train(style, photos, tmp_path / "crashed", tiny_config(), resume=True)
    assert_same_weights(tmp_path / "straight", tmp_path / "crashed")


def test_training_longer_with_resume_equals_one_long_run(tmp_path, style, photos, one_thread):
    fast.train(style, photos, tmp_path / "long", tiny_config(steps=6))
    fast.train(style, photos, tmp_path / "grown", tiny_config(steps=4))
    fast.train(style, photos, tmp_path / "grown", tiny_config(steps=6), resume=True)
    assert_same_weights(tmp_path / "long", tmp_path / "grown")


def test_resume_refusals(tmp_path, style, photos, one_thread):
    folder = tmp_path / "model"
    with pytest.raises(InputError, match="nothing to resume"):
        fast.train(style, photos, folder, tiny_config(), resume=True)
    fast.train(style, photos, folder, tiny_config(steps=2))
    with pytest.raises(InputError, match="already holds a training checkpoint"):
        fast.train(style, photos, folder, tiny_config(steps=4))
    with pytest.raises(InputError, match="different style_weight"):
        fast.train(style, photos, folder, tiny_config(steps=4, style_weight=3.0), resume=True)
    with pytest.raises(InputError, match="different the style image or the training photos"):
        fast.train(style.flip(-1), photos, folder, tiny_config(steps=4), resume=True)


def test_missing_parent_folders_are_created_but_a_file_in_the_way_is_an_error(
    tmp_path, style, photos
):
    fast.train(style, photos, tmp_path / "models" / "new" / "m", tiny_config(steps=1))
    assert (tmp_path / "models" / "new" / "m" / "config.json").is_file()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="afile is a file"):
        fast.train(style, photos, tmp_path / "afile" / "m", tiny_config(steps=1))


def test_an_unrelated_folder_is_never_used(tmp_path, style, photos):
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not an impasto model folder"):
        fast.train(style, photos, folder, tiny_config())
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]


def test_brief_cpu_training_moves_content_toward_the_style(tmp_path, photo_folder, one_thread):
    """Real EfficientNet-Lite0 loss network, 64 px crops, 40 steps; scored by the independent
    EfficientNet-Lite2: the trained model's output is closer to the style than both the photo
    and the untrained network's output, and keeps the photo's structure."""
    from impasto.backbones import load_backbone
    from impasto.images import load_image, resize_long_side
    from impasto.metrics import color_distance, ssim, style_ratio

    style = resize_long_side(load_image(ASSETS / "vangogh_bedroom_in_arles.jpg").rgb, 128)
    train_folder = tmp_path / "train"
    train_folder.mkdir()
    source = load_image(ASSETS / "washington_monument.jpg").rgb
    for i in range(8):  # real photo crops: different parts of the bundled photo
        crop = source[0, :, 20 * i : 20 * i + 160, 30 * i : 30 * i + 200]
        pixels = (crop.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(train_folder / f"{i}.png")
    photos = PhotoSet.load(train_folder, 64)
    config = fast.FastTrainConfig(size=64, batch=2, steps=40, channels=8, residual_blocks=2,
                                  style_weight=5.0, backbone="efficientnet-lite0",
                                  checkpoint_every=40, preview_every=0, device="cpu",
                                  learning_rate=1e-2)  # fmt: skip
    fast.train(style, photos, tmp_path / "model", config)
    macaws = Path(__file__).parent / "data" / "kodim23_macaws.jpg"
    content = resize_long_side(load_image(macaws).rgb, 96)
    trained = fast.stylize(content, fast.load_model(tmp_path / "model"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        untrained_net = fast.TransformNet(config.network()).eval()
    with torch.no_grad():
        untrained = untrained_net(content)
    judge = load_backbone("efficientnet-lite2", allow_download=False)
    ratio_trained = style_ratio(trained, style, content, judge)
    ratio_untrained = style_ratio(untrained, style, content, judge)
    ssim_trained, ssim_untrained = ssim(trained, content), ssim(untrained, content)
    print(f"style ratio trained {ratio_trained:.3f}, untrained {ratio_untrained:.3f}; "
          f"ssim trained {ssim_trained:.3f}, untrained {ssim_untrained:.3f}")  # fmt: skip
    assert ratio_trained < 0.8, ratio_trained
    assert ratio_trained < ratio_untrained
    assert color_distance(trained, style) < color_distance(content, style)
    assert ssim_trained > max(0.15, ssim_untrained)


# --------------------------------------------------------------------------- model folders


def small_folder(tmp_path: Path) -> Path:
    torch.manual_seed(4)
    network = fast.TransformNet(SMALL)
    return save_model_folder(tmp_path / "m", "fast", {"channels": 4, "residual_blocks": 1,
                             "padding": "reflect"}, network.state_dict(), {"x": 1})  # fmt: skip


def test_model_folder_round_trip(tmp_path):
    folder = small_folder(tmp_path)
    loaded = load_model_folder(folder, method="fast")
    assert loaded.metadata == {"x": 1} and loaded.network["channels"] == 4
    model = fast.load_model(folder)
    assert model.network.config == SMALL


def test_fp16_storage_halves_the_file_and_loads_as_float32(tmp_path):
    network = fast.TransformNet(SMALL)
    a = save_model_folder(tmp_path / "a", "fast", {}, network.state_dict(), {})
    b = save_model_folder(tmp_path / "b", "fast", {}, network.state_dict(), {}, dtype=torch.float16)
    size_a = (a / "model.safetensors").stat().st_size
    size_b = (b / "model.safetensors").stat().st_size
    assert size_b < 0.6 * size_a
    assert all(v.dtype == torch.float32 for v in load_model_folder(b).state_dict.values())


def test_a_pickle_is_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    torch.save(fast.TransformNet(SMALL).state_dict(), folder / "model.pth")
    with pytest.raises(InputError, match="model.pth, a pickle"):
        fast.load_model(folder)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "config.json").unlink(), "config.json is missing"),
        (lambda f: (f / "config.json").write_text("{"), "not JSON"),
        (lambda f: (f / "config.json").write_text('{"format": "impasto-model", '
                                                   '"format_version": 99}'), "version 99"),
        (lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 20), "corrupt"),
        (lambda f: save_file({"w": torch.zeros(2)}, str(f / "model.safetensors")),
         "do not fit"),
    ],
)  # fmt: skip
def test_a_damaged_folder_is_one_clear_error(tmp_path, damage, message):
    folder = small_folder(tmp_path)
    damage(folder)
    with pytest.raises(InputError, match=message):
        fast.load_model(folder)


def test_unknown_model_names_list_the_shipped_ones(tmp_path):
    with pytest.raises(InputError, match="model not found: nope"):
        fast.load_model("nope")


def test_colour_preservation_after_the_network(tmp_path):
    model = fast.load_model(small_folder(tmp_path))
    torch.manual_seed(5)
    content = torch.rand(1, 3, 32, 32)
    from impasto.color import rgb_to_yiq

    kept = fast.stylize(content, model, fast.FastConfig(preserve_color="luminance"))
    plain = fast.stylize(content, model)
    yiq_kept, yiq_content, yiq_plain = rgb_to_yiq(kept), rgb_to_yiq(content), rgb_to_yiq(plain)
    inside = (kept > 0.001).all(1) & (kept < 0.999).all(1)  # unclamped pixels
    assert torch.allclose(yiq_kept[:, 1:][:, :, inside[0]], yiq_content[:, 1:][:, :, inside[0]],
                          atol=1e-4)  # fmt: skip
    assert torch.allclose(yiq_kept[:, :1][:, :, inside[0]], yiq_plain[:, :1][:, :, inside[0]],
                          atol=1e-4)  # fmt: skip
    with pytest.raises(InputError, match="preserve-color"):
        fast.stylize(content, model, fast.FastConfig(preserve_color="sepia"))


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_inference_matches_eager(tmp_path, one_thread):
    model = fast.load_model(small_folder(tmp_path))
    torch.manual_seed(6)
    content = torch.rand(1, 3, 24, 32)
    eager = fast.stylize(content, model, fast.FastConfig(device="cpu"))
    compiled = fast.stylize(content, model, fast.FastConfig(device="cpu", compile=True))
    assert torch.allclose(eager, compiled, atol=1e-4)


def test_tiny_images_are_refused_clearly(tmp_path):
    model = fast.load_model(small_folder(tmp_path))
    with pytest.raises(InputError, match="at least 16 pixels"):
        fast.stylize(torch.rand(1, 3, 8, 40), model)
    with pytest.raises(InputError, match="got 64x8"):  # too thin once resized
        fast.stylize(torch.rand(1, 3, 40, 320), model, fast.FastConfig(size=64))


# --------------------------------------------------------------------------- the shipped model


@pytest.mark.parametrize("name", ["vangogh-bedroom", "vangogh-bedroom-rt"])
def test_the_shipped_model_loads_by_name_and_paints_in_its_style(name):
    """A model inside the package: found by name, provenance matches the bundled painting's
    file, small, and it moves a photo toward that painting (scored by another network)."""
    import hashlib

    from impasto.backbones import load_backbone
    from impasto.images import load_image, resize_long_side
    from impasto.metrics import color_distance, ssim, style_ratio

    assert name in model_folder.shipped_models()
    folder = model_folder.MODELS_DIR / name
    assert (folder / "model.safetensors").stat().st_size <= 8 * 1024 * 1024
    assert (folder / "README.md").is_file()
    model = fast.load_model(name)
    painting = ASSETS / "vangogh_bedroom_in_arles.jpg"
    assert model.metadata["style"]["sha256"] == hashlib.sha256(painting.read_bytes()).hexdigest()
    assert "research" in model.metadata["data"]["terms"]
    photo = resize_long_side(load_image(ASSETS / "washington_monument.jpg").rgb, 256)
    style = resize_long_side(load_image(painting).rgb, 256)
    out = fast.stylize(photo, model)
    judge = load_backbone("efficientnet-lite2", allow_download=False)
    assert style_ratio(out, style, photo, judge) < 0.5
    assert color_distance(out, style) < color_distance(photo, style)
    assert ssim(out, photo) > 0.3


# --------------------------------------------------------------------------- half-precision paths


def test_half_precision_inference_path_on_the_cpu(tmp_path):
    """The CUDA path (half precision, channels_last) run with bf16 on the CPU: same logic."""
    model = fast.load_model(small_folder(tmp_path))
    torch.manual_seed(7)
    images = torch.rand(2, 3, 24, 36)
    full = fast.Stylizer(model, "cpu", "fp32", channels_last=False)(images)
    half = fast.Stylizer(fast.load_model(small_folder(tmp_path / "b")), "cpu", "bf16",
                         channels_last=True)  # fmt: skip
    assert half.dtype == torch.bfloat16 and half.memory_format == torch.channels_last
    out = half(images)
    assert out.dtype == torch.float32 and out.shape == images.shape
    assert (out - full).abs().max() < 0.05


def test_mixed_precision_training_path_on_the_cpu(tmp_path, style, photos, one_thread):
    """precision=bf16 (the CUDA default) trains under autocast; weights stay float32."""
    fast.train(style, photos, tmp_path / "m", tiny_config(steps=2, precision="bf16"))
    weights = weights_of(tmp_path / "m")
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights.values())


def test_edge_kernel_option_and_older_configs_default_to_nine(tmp_path):
    network = fast.TransformNet(fast.NetworkConfig(channels=4, residual_blocks=1, edge_kernel=5))
    convs = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (5, 5) and convs[-1].kernel_size == (5, 5)
    with torch.no_grad():
        assert network(torch.rand(1, 3, 19, 23)).shape == (1, 3, 19, 23)
    old = save_model_folder(tmp_path / "old", "fast", {"channels": 4, "residual_blocks": 1},
                            fast.TransformNet(SMALL).state_dict(), {})  # fmt: skip
    assert fast.load_model(old).network.config.edge_kernel == 9
    network_config = {"channels": 4, "residual_blocks": 1, "edge_kernel": 4}
    bad = save_model_folder(tmp_path / "bad", "fast", network_config,
                            fast.TransformNet(SMALL).state_dict(), {})  # fmt: skip
    with pytest.raises(InputError, match="'edge_kernel' must be one of"):
        fast.load_model(bad)
