"""The depth ControlNet of the diffusion method on tiny components (tests/diffusion_tiny.py):
the depth estimator loads from a folder in Depth Anything's layout, the ControlNet that is
loaded is the depth one, and what it sees is the photo's depth as the estimator gives it (near
white, far black, the photo's size); missing depth weights are one line naming the download."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusion extra (diffusers) is not installed")
pytest.importorskip("transformers", reason="the diffusion extra (transformers) is not installed")
import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusion_tiny import record_calls, tiny_repos  # noqa: E402, F401
from helpers import error_line, run_cli  # noqa: E402

import impasto  # noqa: E402
from impasto.depth import DepthEstimator, normalised  # noqa: E402
from impasto.errors import WeightsError  # noqa: E402
from impasto.methods.diffusion import DiffusionConfig, canny_edges  # noqa: E402
from impasto.methods.registry import load_method  # noqa: E402


def photo_of_a_ramp(height: int = 48, width: int = 64) -> torch.Tensor:
    """A photo with structure: a bright square on a left-to-right ramp."""
    ramp = torch.linspace(0, 1, width).expand(1, 3, height, width).clone()
    ramp[..., 10:30, 20:40] = torch.tensor([0.9, 0.2, 0.1])[:, None, None]
    return ramp


def depth_by_hand(folder, photo: torch.Tensor) -> torch.Tensor:
    """The depth picture computed straight with transformers, not through impasto: the
    processor's pixels, the model's prediction at the photo's size, stretched to [0, 1]."""
    processor = transformers.AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True)
    pixels = processor(images=photo[0], do_rescale=False, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        depth = model(pixel_values=pixels).predicted_depth[:, None]
    depth = torch.nn.functional.interpolate(depth, size=photo.shape[-2:], mode="bicubic")
    return (depth - depth.min()) / (depth.max() - depth.min())


def depth_options(repos, family: str = "sdxl", **more) -> dict:
    base = {"sdxl": repos.sdxl_base, "sd15": repos.sd15_base}[family]
    return {"base": str(base), "ip_adapter": str(repos.ip_adapter), "control": "depth",
            "controlnet": str(repos.controlnet(family, "depth")),
            "depth_model": str(repos.depth_model), "size": 64, "steps": 2, "device": "cpu",
            **more}  # fmt: skip


def test_normalised_puts_near_white_and_far_black_and_a_flat_depth_black():
    inverse_depth = torch.tensor([[[[2.0, 4.0], [6.0, 6.0]]]])  # large is near
    assert torch.equal(normalised(inverse_depth), torch.tensor([[[[0.0, 0.5], [1.0, 1.0]]]]))
    assert torch.equal(normalised(torch.full((1, 1, 3, 3), 7.0)), torch.zeros(1, 1, 3, 3))


def test_the_estimator_gives_the_photos_depth_at_its_size(tiny_repos):  # noqa: F811
    photo = photo_of_a_ramp()
    depth = DepthEstimator(str(tiny_repos.depth_model), torch.device("cpu"))(photo)
    expected = depth_by_hand(tiny_repos.depth_model, photo)
    assert depth.shape == (1, 3, 48, 64)
    assert torch.equal(depth[:, 0], depth[:, 2])  # grey
    assert torch.allclose(depth[:, :1], expected, atol=1e-5)
    assert float(depth.min()) == 0.0 and float(depth.max()) == 1.0


@pytest.mark.parametrize("family", ["sdxl", "sd15"])
def test_the_depth_controlnet_sees_the_photos_depth(tiny_repos, monkeypatch, family):  # noqa: F811
    runner = load_method("diffusion").prepare(
        DiffusionConfig(**depth_options(tiny_repos, family)), [photo_of_a_ramp(32, 32)]
    )
    loaded = diffusers.ControlNetModel.from_pretrained(
        tiny_repos.controlnet(family, "depth"), local_files_only=True
    )
    canny = diffusers.ControlNetModel.from_pretrained(
        tiny_repos.controlnet(family, "canny"), local_files_only=True
    )
    weights = runner.pipe.controlnet.state_dict()
    key = "controlnet_mid_block.weight"
    assert torch.equal(weights[key], loaded.state_dict()[key])  # the depth one, not the canny
    assert not torch.equal(weights[key], canny.state_dict()[key])
    seen = record_calls(monkeypatch, runner.pipe)
    result = runner.run(photo_of_a_ramp())
    control = seen["control_image"]
    expected = depth_by_hand(tiny_repos.depth_model, seen["image"])
    assert control.shape == seen["image"].shape
    assert torch.allclose(control[:, :1], expected, atol=1e-5)
    assert not torch.equal(control, canny_edges(seen["image"]))
    assert result.image.shape == (1, 3, 48, 64)


def test_missing_depth_weights_are_one_line_naming_the_download(tiny_repos, tmp_path,  # noqa: F811
                                                                monkeypatch):  # fmt: skip
    method = load_method("diffusion")
    no_estimator = DiffusionConfig(**depth_options(tiny_repos, depth_model="someone/absent"))
    with pytest.raises(WeightsError, match="`impasto download depth-anything` fetches it"):
        method.prepare(no_estimator, [photo_of_a_ramp()])
    no_controlnet = DiffusionConfig(**depth_options(tiny_repos, controlnet=None))
    cache = tmp_path / "cache-without-depth-controlnet"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(WeightsError, match="impasto download controlnet-depth-sdxl"):
        method.prepare(no_controlnet, [photo_of_a_ramp()])


def test_the_cli_runs_with_depth_from_the_cache_defaults(capsys, tmp_path):
    photo, painting, out = tmp_path / "p.png", tmp_path / "s.png", tmp_path / "o.png"
    impasto.save_image(photo_of_a_ramp(), photo)
    impasto.save_image(photo_of_a_ramp(32, 32).flip(-1), painting)
    code, _out, err = run_cli(capsys, "stylize", photo, painting, "-o", out, "--method",
                              "diffusion", "--control", "depth", "--size", "64", "--steps",
                              "2", "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert impasto.load_image(out).rgb.shape[-2:] == (48, 64)


def test_the_cli_says_which_depth_weights_are_missing(capsys, tmp_path):
    photo, out = tmp_path / "p.png", tmp_path / "o.png"
    impasto.save_image(photo_of_a_ramp(), photo)
    code, _out, err = run_cli(capsys, "stylize", photo, photo, "-o", out, "--method",
                              "diffusion", "--control", "depth", "--depth-model",
                              "someone/absent", "--device", "cpu")  # fmt: skip
    assert code == 2 and "impasto download depth-anything" in error_line(err)
    assert not out.exists()
