"""Tests for impasto.metrics and ``impasto evaluate``.

Known values come from the definitions (identity, constants, inversion), directions from
real EfficientNet-Lite2 weights on the bundled photos at 96 px. Random-network checks use the
``tiny`` backbone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import metrics
from impasto.backbones import load_backbone
from impasto.cli import main as cli
from impasto.errors import InputError
from impasto.images import load_image, resize_long_side, resize_to
from impasto.metrics import evaluation

ASSETS = Path(__file__).resolve().parents[1] / "src" / "impasto" / "assets"


@pytest.fixture(scope="module")
def photos():
    """(content, style) at 96 px long side: the Washington Monument and Van Gogh's bedroom."""
    content = load_image(ASSETS / "washington_monument.jpg").rgb
    style = load_image(ASSETS / "vangogh_bedroom_in_arles.jpg").rgb
    return resize_long_side(content, 96), resize_long_side(style, 96)


@pytest.fixture(scope="module")
def tiny():
    return load_backbone("tiny")


@pytest.fixture(scope="module")
def lite2():
    return load_backbone("efficientnet-lite2")


def noisy(image: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(image.shape, generator=generator)
    return (image + sigma * noise).clamp(0, 1)


# --------------------------------------------------------------------------- ssim


def test_ssim_of_an_image_with_itself_is_one(photos):
    content, _ = photos
    assert metrics.ssim(content, content.clone()) == pytest.approx(1.0, abs=1e-6)


def test_ssim_of_constant_images_is_the_luminance_term():
    # Constant images have zero variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) with
    # a, b the luminances: grey 0.5 and 0.25 (Y of a grey equals its value).
    a, b, c1 = 0.5, 0.25, 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # 0.8002...
    image = torch.full((1, 3, 16, 16), a)
    other = torch.full((1, 3, 16, 16), b)
    assert metrics.ssim(image, other) == pytest.approx(expected, abs=1e-6)


def test_ssim_of_an_inverted_image_is_low(photos):
    content, _ = photos
    assert metrics.ssim(content, 1 - content) < 0.2


def test_ssim_falls_as_noise_grows(photos):
    content, _ = photos
    scores = [metrics.ssim(noisy(content, sigma), content) for sigma in (0.02, 0.1, 0.3)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_ssim_refuses_different_sizes_and_tiny_images():
    with pytest.raises(InputError, match="same size"):
        metrics.ssim(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 21))
    with pytest.raises(InputError, match="11x11"):
        metrics.ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


# --------------------------------------------------------------------------- colour


def test_color_distance_of_an_image_with_itself_is_zero(photos):
    content, _ = photos
    assert metrics.color_distance(content, content.clone()) == pytest.approx(0.0, abs=1e-9)


def test_color_distance_between_grey_and_white_is_their_luminance_difference():
    # Grey (0.5, 0.5, 0.5) is YIQ (0.5, 0, 0) and white is (1, 0, 0): the I and Q rows of the
    # matrix sum to 0 and the Y row to 1. Both images are single colours, so along a unit
    # direction u the 1-D W1 distance is |u . (0.5, 0, 0)| = 0.5 |u_Y|. The 64 directions have
    # u_Y = 1 - (2k + 1) / 64, i.e. +-1/64, +-3/64, ..., +-63/64, whose mean |u_Y| is
    # 2 * (1 + 3 + ... + 63) / 64^2 = 2 * 32^2 / 64^2 = 1/2. The metric is twice the mean over
    # directions: 2 * 0.5 * 1/2 = 0.5, the luminance difference.
    grey = torch.full((1, 3, 12, 12), 0.5)
    white = torch.ones(1, 3, 20, 20)  # sizes may differ: only the colour distributions count
    assert metrics.color_distance(grey, white) == pytest.approx(0.5, abs=1e-6)
    assert metrics.color_distance(white, grey) == pytest.approx(0.5, abs=1e-6)


def test_color_distance_directions_are_unit_vectors():
    norms = metrics.COLOR_DIRECTIONS.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-12)


# --------------------------------------------------------------------------- feature metrics


def test_content_distance_is_zero_for_identical_and_positive_otherwise(photos, tiny):
    content, _ = photos
    assert metrics.content_distance(content, content.clone(), tiny) == pytest.approx(0.0)
    assert metrics.content_distance(noisy(content, 0.1), content, tiny) > 0.01


def test_style_ratio_of_the_content_is_one(photos, tiny, lite2):
    content, style = photos
    other_style = torch.rand(1, 3, 50, 70, generator=torch.Generator().manual_seed(1))
    for backbone in (tiny, lite2):
        for s in (style, other_style):
            assert metrics.style_ratio(content.clone(), s, content, backbone) == pytest.approx(
                1.0, abs=1e-6
            )


def test_meanstd_distance_is_zero_for_identical_and_positive_otherwise(photos, tiny):
    content, style = photos
    assert metrics.meanstd_distance(style, style.clone(), tiny) == pytest.approx(0.0, abs=1e-9)
    assert metrics.meanstd_distance(content, style, tiny) > 0.01


def test_blend_with_the_style_moves_the_metrics_the_right_way(photos, lite2):
    # Real weights (Lite2): mixing in half the style painting must make the Gram statistics
    # closer to the style's than the photo's were, and must lose some of the photo's structure.
    content, style = photos
    blend = 0.5 * content + 0.5 * resize_to(style, *content.shape[-2:])
    assert metrics.style_ratio(blend, style, content, lite2) < 1.0
    assert metrics.ssim(blend, content) < metrics.ssim(content, content)
    assert metrics.meanstd_distance(blend, style, lite2) < metrics.meanstd_distance(
        content, style, lite2
    )
    assert metrics.color_distance(blend, style) < metrics.color_distance(content, style)


def test_backbone_by_name_is_loaded(photos):
    content, _ = photos
    assert metrics.content_distance(content, content, "tiny") == pytest.approx(0.0)


# --------------------------------------------------------------------------- evaluate


def test_evaluate_auto_avoids_the_network_that_made_the_output(photos):
    content, style = photos
    report = metrics.evaluate(content, content, style, made_with="efficientnet-lite0")
    assert report.backbone == "efficientnet-lite2"
    report = metrics.evaluate(content, content, style, made_with="efficientnet-lite2")
    assert report.backbone == "efficientnet-lite0"
    assert report.metrics["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert report.metrics["content_distance"] == pytest.approx(0.0, abs=1e-9)
    assert report.metrics["style_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert report.notes == []


def test_evaluate_lists_clip_without_weights_as_unavailable_never_as_numbers(photos):
    content, style = photos
    report = metrics.evaluate(content, content, style, backbone="tiny")
    assert set(report.unavailable) == {"clip_content", "clip_style"}
    for name in ("clip_content", "clip_style"):
        assert report.unavailable[name].startswith("unavailable: weights not found")
        assert "impasto download clip-vit-b32" in report.unavailable[name]
    assert not set(report.unavailable) & set(report.metrics)
    assert not set(report.unavailable) & set(report.references["style"])
    assert set(report.metrics) == set(metrics.METRICS) - {"clip_content", "clip_style"}
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["backbone"] == "tiny"
    assert as_dict["directions"]["ssim"] == "higher is better"
    assert as_dict["toward"] == {
        "ssim": "content",
        "content_distance": "content",
        "style_ratio": "style",
        "meanstd_distance": "style",
        "color_distance": "style",
    }
    assert as_dict["references"]["content"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert as_dict["verdict"] == report.verdict != ""


def test_artfid_is_not_offered():
    # ArtFID is not implemented: it is no choice (it used to be listed and never scored).
    assert "artfid" not in metrics.METRIC_CHOICES
    with pytest.raises(InputError, match="unknown metric.*'artfid'"):
        metrics.check_metrics(["artfid"])


# --------------------------------------------------------------------------- references, verdict


def test_style_stand_in_is_the_centre_of_the_style_at_the_output_size():
    # A wide style whose thirds are red, green and blue: cropped to a square output, exactly the
    # green middle third is left, then resized to 30x30.
    style = torch.zeros(1, 3, 20, 60)
    for third in range(3):
        style[0, third, :, 20 * third : 20 * (third + 1)] = 1.0
    stand_in = metrics.style_stand_in(style, torch.zeros(1, 3, 30, 30))
    assert tuple(stand_in.shape) == (1, 3, 30, 30)
    green = torch.tensor([0.0, 1.0, 0.0])[None, :, None, None]
    assert torch.allclose(stand_in, green.expand(1, 3, 30, 30), atol=1e-6)
    # A tall style and a wide output: the middle rows are kept.
    tall = style.transpose(2, 3)  # thirds from top to bottom
    stand_in = metrics.style_stand_in(tall, torch.zeros(1, 3, 10, 40))
    assert tuple(stand_in.shape) == (1, 3, 10, 40)
    assert torch.allclose(stand_in, green.expand(1, 3, 10, 40), atol=1e-6)


def test_share_places_a_value_between_the_references():
    # structure: 0 at the style's score, 1 at the content's; style and colour: the reverse.
    assert metrics.share("ssim", 0.6, 1.0, 0.2) == pytest.approx(0.5)
    assert metrics.share("content_distance", 0.5, 0.0, 2.0) == pytest.approx(0.75)
    assert metrics.share("style_ratio", 0.25, 1.0, 0.0) == pytest.approx(0.75)
    assert metrics.share("color_distance", 0.2, 0.1, 0.3) == pytest.approx(0.5)
    assert metrics.share("style_ratio", 1.5, 1.0, 0.0) == pytest.approx(-0.5)
    assert metrics.share("ssim", 0.5, 0.7, 0.7) is None  # the references agree: no scale


def test_verdict_reads_the_shares_in_words():
    references = {
        "content": {"ssim": 1.0, "style_ratio": 1.0, "color_distance": 0.2},
        "style": {"ssim": 0.2, "style_ratio": 0.0, "color_distance": 0.0},
    }
    text = metrics.verdict({"ssim": 0.6, "style_ratio": 0.05, "color_distance": 0.15}, references)
    assert "keeps about half of the content's structure (50% by ssim)" in text
    assert "comes almost all of the way to the style's statistics (95% by style_ratio)" in text
    assert "comes some of the way to the style's colours (25% by color_distance)" in text
    text = metrics.verdict({"ssim": 0.1, "style_ratio": 1.2}, references)
    assert "keeps less of the content's structure than the style image itself" in text
    assert "moves away from the style's statistics (-20% by style_ratio)" in text
    assert metrics.verdict({"meanstd_distance": 0.1}, references) == ""
    assert metrics.verdict({"ssim": 0.5}, {}) == ""
    same = {"content": {"ssim": 0.4}, "style": {"ssim": 0.4}}
    assert "cannot tell how much structure is kept" in metrics.verdict({"ssim": 0.5}, same)


def test_evaluate_scores_the_content_itself_and_the_style_itself(photos, tiny):
    content, style = photos
    output = noisy(content, 0.1)
    report = metrics.evaluate(output, content, style, backbone=tiny)
    own, painting = report.references["content"], report.references["style"]
    assert set(own) == set(painting) == set(report.metrics)
    # The content itself: the definitions' values for an untouched photo.
    assert own["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert own["content_distance"] == pytest.approx(0.0, abs=1e-9)
    assert own["style_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert own["color_distance"] == pytest.approx(metrics.color_distance(content, style))
    # The style itself: the painting cropped to the photo's shape, scored like a result.
    stand_in = metrics.style_stand_in(style, output)
    assert painting["ssim"] == pytest.approx(metrics.ssim(stand_in, content))
    assert painting["color_distance"] < 0.05 < own["color_distance"]
    assert painting["style_ratio"] < 0.2
    # A lightly noised photo keeps most of the structure and gains none of the style.
    assert report.verdict.startswith("keeps ")
    assert "of the content's structure" in report.verdict
    assert "structure than the style image itself" not in report.verdict


def test_a_blend_lies_between_the_references_on_every_metric(photos, lite2):
    # Real weights (Lite2): half photo, half painting must score between the two references.
    content, style = photos
    blend = 0.5 * content + 0.5 * metrics.style_stand_in(style, content)
    report = metrics.evaluate(blend, content, style, backbone=lite2)
    for name, value in report.metrics.items():
        fraction = metrics.share(
            name, value, report.references["content"][name], report.references["style"][name]
        )
        assert 0.0 < fraction < 1.0, (name, value, report.references)
    assert "keeps " in report.verdict and "comes " in report.verdict


def test_evaluate_without_references_does_no_extra_work(photos, tiny):
    content, style = photos
    report = metrics.evaluate(content, content, style, backbone=tiny, references=False)
    assert report.references == {} and report.verdict == ""
    assert report.to_dict()["references"] == {}


def test_evaluate_refuses_a_different_aspect_ratio(photos):
    content, style = photos
    wide = torch.rand(1, 3, 40, 80)
    with pytest.raises(InputError, match=r"80x40.*96x72|different aspect"):
        metrics.evaluate(wide, content, style, backbone="tiny")


def test_evaluate_resizes_a_content_of_the_same_aspect_ratio(photos):
    content, style = photos
    small = resize_to(content, 36, 48)  # half of 72x96
    report = metrics.evaluate(small, content, style, backbone="tiny", metrics=["ssim"])
    assert report.metrics["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_evaluate_refuses_unknown_names(photos):
    content, style = photos
    with pytest.raises(InputError, match="unknown metric.*'fid'.*choose from: ssim"):
        metrics.evaluate(content, content, style, metrics=["ssim", "fid"])
    with pytest.raises(InputError, match="unknown backbone 'resnet'"):
        metrics.evaluate(content, content, style, backbone="resnet")
    with pytest.raises(InputError, match="unknown made_with"):
        metrics.evaluate(content, content, style, made_with="resnet")


def test_evaluate_pixel_metrics_need_no_network(photos, monkeypatch):
    content, style = photos

    def forbidden(*args, **kwargs):
        raise AssertionError("a backbone was loaded for pixel metrics")

    # evaluate looks the loader up in its own module; patching impasto.metrics would miss it.
    monkeypatch.setattr(evaluation, "load_scoring_backbone", forbidden)
    report = metrics.evaluate(
        content, content, style, metrics=["ssim", "color_distance", "clip_style"]
    )
    assert report.backbone == "none"
    assert list(report.metrics) == ["ssim", "color_distance"]
    assert list(report.unavailable) == ["clip_style"]


def test_evaluate_notes_a_biased_backbone_choice(photos):
    content, style = photos
    report = metrics.evaluate(
        content, content, style, backbone="tiny", made_with="tiny", metrics=["style_ratio"]
    )
    assert report.notes and "flatter" in report.notes[0]


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def files(tmp_path, photos):
    content, style = photos
    paths = {"content": tmp_path / "content.png", "style": tmp_path / "style.png"}
    for name, image in (("content", content), ("style", style)):
        array = (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(paths[name])
    wide = np.zeros((30, 90, 3), dtype=np.uint8)
    paths["wide"] = tmp_path / "wide.png"
    Image.fromarray(wide).save(paths["wide"])
    return paths


def run(capsys, *argv):
    code = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("impasto: error: ")
    return lines[0]


def test_cli_prints_a_table(capsys, files):
    code, out, _ = run(
        capsys, "evaluate", files["content"], "--content", files["content"],
        "--style", files["style"], "--backbone", "tiny",
    )  # fmt: skip
    assert code == 0
    header, ssim_line = out.splitlines()[:2]
    assert header.split()[:6] == ["metric", "result", "content", "itself", "style", "itself"]
    assert ssim_line.split()[:3] == ["ssim", "1.0000", "1.0000"]  # the content is its own score
    assert "higher = nearer the content" in out and "lower = nearer the style" in out
    assert "backbone: tiny" in out
    assert "clip_style" in out and "artfid" not in out
    assert "verdict: keeps almost all of the content's structure (100% by ssim)" in out


def test_cli_json_scores_the_content_as_itself(capsys, files):
    code, out, _ = run(
        capsys, "evaluate", files["content"], "--content", files["content"],
        "--style", files["style"], "--made-with", "efficientnet-lite0",
        "--metrics", "ssim", "style_ratio", "clip_style", "--json",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["metrics"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert report["metrics"]["style_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert report["backbone"] == "efficientnet-lite2"
    assert list(report["unavailable"]) == ["clip_style"]
    assert report["references"]["content"]["style_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert report["references"]["style"]["style_ratio"] < 0.5
    assert (
        "comes none of the way to the style's statistics (0% by style_ratio)" in report["verdict"]
    )


def test_cli_missing_file_is_one_line(capsys, files, tmp_path):
    code, out, err = run(
        capsys, "evaluate", tmp_path / "nope.png", "--content", files["content"],
        "--style", files["style"],
    )  # fmt: skip
    assert code == 2 and out == ""
    assert "nope.png" in one_error_line(err)


def test_cli_aspect_mismatch_is_one_line(capsys, files):
    code, _, err = run(
        capsys, "evaluate", files["wide"], "--content", files["content"],
        "--style", files["style"], "--backbone", "tiny",
    )  # fmt: skip
    assert code == 2
    assert "aspect" in one_error_line(err)


@pytest.mark.parametrize(
    "extra, word",
    [
        (["--metrics", "fid"], "fid"),
        (["--metrics", "artfid"], "artfid"),
        (["--backbone", "resnet"], "resnet"),
        ([], "--style"),
    ],
)
def test_cli_bad_options_are_one_line(capsys, files, extra, word):
    argv = ["evaluate", files["content"], "--content", files["content"]]
    if word != "--style":
        argv += ["--style", files["style"]]
    code, _, err = run(capsys, *argv, *extra)
    assert code == 2
    assert word in one_error_line(err)
