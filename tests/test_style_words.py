"""Style keywords (impasto.style_words, ``impasto describe-style``, ``--prompt auto``) on a tiny
CLIP saved in openai/clip-vit-base-patch32's layout in the test session's Hugging Face cache
(tests/diffusion_tiny.py). Random weights: these tests prove the ranking, the preprocessing,
the prompt and the wiring, not that CLIP names a painting's style well."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("transformers", reason="the diffusion extra (transformers) is not installed")
pytest.importorskip("diffusers", reason="the diffusion extra (diffusers) is not installed")
from diffusion_tiny import record_calls, tiny_repos  # noqa: E402, F401
from helpers import error_line, run_cli  # noqa: E402

import impasto  # noqa: E402
from impasto import style_words  # noqa: E402
from impasto.errors import WeightsError  # noqa: E402
from impasto.style_words import Keyword, clip_pixels, prompt_from  # noqa: E402


def painting(seed: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 6, 6, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(90, 120), mode="bilinear")


def test_terms_are_ranked_by_cosine_similarity_with_the_painting():
    model, tokenizer = style_words.load_clip()  # the default id, from the session's cache
    image = painting()
    found = style_words.describe(image, (model, tokenizer), top=4)
    with torch.no_grad():
        picture = model.get_image_features(pixel_values=clip_pixels(image, model))
        picture = getattr(picture, "pooler_output", picture)[0]
        for kind, terms in style_words.VOCABULARY.items():
            scores = []
            for term in terms:  # one phrase at a time: no padding shared with the others
                tokens = tokenizer([style_words.TEMPLATE.format(term)], return_tensors="pt")
                words = model.get_text_features(**tokens)
                words = getattr(words, "pooler_output", words)[0]
                scores.append(float(torch.cosine_similarity(words, picture, dim=0)))
            expected = [t for _s, t in sorted(zip(scores, terms, strict=True), reverse=True)][:4]
            got = [k.term for k in found if k.kind == kind]
            assert got == expected, kind
            assert [k.score for k in found if k.kind == kind] == pytest.approx(
                sorted(scores, reverse=True)[:4], abs=1e-5
            )


def test_clip_input_is_the_centre_crop_normalised_with_clips_statistics():
    image = torch.zeros(1, 3, 100, 300)
    image[..., 100:200] = 1.0  # a white middle third: the centre crop sees it all
    pixels = clip_pixels(image, type("M", (), {"config": _config(224)})())
    assert pixels.shape == (1, 3, 224, 224)
    white = (1 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711]
    )
    assert torch.allclose(pixels[0, :, 112, 112], white, atol=1e-4)


def _config(size: int):
    vision = type("V", (), {"image_size": size})()
    return type("C", (), {"vision_config": vision})()


def test_the_prompt_takes_the_best_term_of_each_kind():
    keywords = [
        Keyword("movement", "fauvism", 0.3), Keyword("movement", "cubism", 0.2),
        Keyword("technique", "gouache", 0.25), Keyword("palette", "vivid primaries", 0.2),
        Keyword("artist", "Henri Matisse", 0.31), Keyword("artist", "Paul Gauguin", 0.3),
    ]  # fmt: skip
    assert prompt_from(keywords) == (
        "a painting, fauvism, gouache, vivid primaries, in the style of Henri Matisse"
    )
    assert prompt_from([Keyword("palette", "sepia", 0.1)]) == "a painting, sepia"


def test_describe_style_prints_each_kind_and_the_prompt(capsys, tmp_path):
    path = tmp_path / "painting.png"
    impasto.save_image(painting(), path)
    code, out, err = run_cli(capsys, "describe-style", path, "--top", "2")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["movement", "technique", "palette", "artist",
                                                   "prompt"]  # fmt: skip
    assert lines[-1].split(None, 1)[1].startswith("a painting, ")
    code, out, err = run_cli(capsys, "describe-style", path, "--json")
    document = json.loads(out)
    assert len(document["keywords"]) == 3 * len(style_words.VOCABULARY)
    assert document["prompt"].startswith("a painting, ")


def test_describe_style_without_clip_is_one_line_naming_the_download(capsys, tmp_path,
                                                                     monkeypatch):  # fmt: skip
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    path = tmp_path / "painting.png"
    impasto.save_image(painting(), path)
    code, _out, err = run_cli(capsys, "describe-style", path)
    assert code == 2 and "impasto download clip-text" in error_line(err)
    with pytest.raises(WeightsError, match="clip-text"):
        style_words.load_clip()


def test_prompt_auto_gives_the_diffusion_pipeline_the_keywords(tiny_repos, monkeypatch):  # noqa: F811
    from impasto.methods.diffusion import DiffusionConfig
    from impasto.methods.registry import load_method

    style = painting(5)
    said = []
    config = DiffusionConfig(prompt="auto", size=64, steps=2, device="cpu")
    runner = load_method("diffusion").prepare(config, [style], notify=said.append)
    expected = prompt_from(style_words.describe(style, top=1))
    assert runner.prompt == expected and said == [f"prompt: {expected}"]
    seen = record_calls(monkeypatch, runner.pipe)
    result = runner.run(painting(6))
    assert seen["prompt"] == expected and result.details["prompt"] == expected
