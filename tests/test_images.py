"""Tests for impasto.images: decoding modes, alpha, EXIF, ICC, size caps, atomic saving, resizing,
contact sheets.

Every test image is built here with Pillow (or by hand, for 16-bit RGB PNG and the ICC
profile) so the expected values have a reason independent of the code under test.
"""

import os
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.errors import InputError
from impasto.images import (
    OUTPUT_FORMATS,
    check_output_path,
    decode,
    draw_sheet,
    encode,
    load_image,
    resize_long_side,
    resize_to,
    save_image,
    sheet_size,
    to_pil,
)

W, H = 24, 16


def pixel(tensor, x, y):
    """Values of (1, C, H, W) tensor at column x, row y as a list of floats."""
    return tensor[0, :, y, x].tolist()


def check_contract(loaded, height=H, width=W):
    assert loaded.rgb.dtype == torch.float32
    assert loaded.rgb.shape == (1, 3, height, width)
    assert loaded.rgb.is_contiguous()
    assert float(loaded.rgb.min()) >= 0.0 and float(loaded.rgb.max()) <= 1.0
    if loaded.alpha is not None:
        assert loaded.alpha.dtype == torch.float32
        assert loaded.alpha.shape == (1, 1, height, width)
        assert loaded.alpha.is_contiguous()


# --------------------------------------------------------------------------- modes


def test_grayscale_l_gives_three_equal_channels(tmp_path):
    values = (np.arange(H * W).reshape(H, W) % 256).astype(np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(values, mode="L").save(path)
    loaded = load_image(path)
    check_contract(loaded)
    expected = torch.from_numpy(values.astype(np.float32) / 255.0)
    for channel in range(3):
        assert torch.equal(loaded.rgb[0, channel], expected)
    assert loaded.alpha is None
    assert loaded.path == path


def test_rgb_png_exact_values(tmp_path):
    path = tmp_path / "rgb.png"
    image = Image.new("RGB", (W, H), (10, 20, 30))
    image.putpixel((5, 3), (255, 0, 128))
    image.save(path)
    loaded = load_image(str(path))
    check_contract(loaded)
    assert pixel(loaded.rgb, 0, 0) == pytest.approx([10 / 255, 20 / 255, 30 / 255], abs=1e-7)
    assert pixel(loaded.rgb, 5, 3) == pytest.approx([1.0, 0.0, 128 / 255], abs=1e-7)


def test_bilevel_mode_1(tmp_path):
    path = tmp_path / "bits.png"
    image = Image.new("1", (W, H), 0)
    image.putpixel((2, 2), 1)
    image.save(path)
    loaded = load_image(path)
    check_contract(loaded)
    assert pixel(loaded.rgb, 0, 0) == [0.0, 0.0, 0.0]
    assert pixel(loaded.rgb, 2, 2) == [1.0, 1.0, 1.0]


def test_palette_image_gives_palette_colours(tmp_path):
    path = tmp_path / "palette.png"
    image = Image.new("P", (W, H), 0)
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (3 * 253))
    image.putpixel((1, 0), 1)
    image.putpixel((2, 0), 2)
    image.save(path)
    loaded = load_image(path)
    check_contract(loaded)
    assert pixel(loaded.rgb, 0, 0) == [1.0, 0.0, 0.0]
    assert pixel(loaded.rgb, 1, 0) == [0.0, 1.0, 0.0]
    assert pixel(loaded.rgb, 2, 0) == [0.0, 0.0, 1.0]
    assert loaded.alpha is None


def test_palette_with_transparency(tmp_path):
    path = tmp_path / "palette_t.png"
    image = Image.new("P", (W, H), 0)
    image.putpalette([0, 0, 200, 30, 40, 50] + [0] * (3 * 254))
    image.putpixel((3, 4), 1)
    image.save(path, transparency=0)  # index 0 is transparent
    loaded = load_image(path)
    check_contract(loaded)
    assert loaded.alpha is not None
    assert loaded.alpha[0, 0, 0, 0] == 0.0
    assert loaded.alpha[0, 0, 4, 3] == 1.0
    # Colour under transparent pixels is replaced by white, the rest kept.
    assert pixel(loaded.rgb, 0, 0) == [1.0, 1.0, 1.0]
    assert pixel(loaded.rgb, 3, 4) == pytest.approx([30 / 255, 40 / 255, 50 / 255], abs=1e-7)


def test_cmyk_conversion(tmp_path):
    path = tmp_path / "cmyk.tif"
    image = Image.new("CMYK", (W, H), (0, 0, 0, 0))
    image.putpixel((1, 0), (0, 0, 0, 255))  # full black ink
    image.putpixel((2, 0), (255, 0, 0, 0))  # full cyan ink
    image.save(path)
    loaded = load_image(path)
    check_contract(loaded)
    assert pixel(loaded.rgb, 0, 0) == [1.0, 1.0, 1.0]
    assert pixel(loaded.rgb, 1, 0) == [0.0, 0.0, 0.0]
    assert pixel(loaded.rgb, 2, 0) == [0.0, 1.0, 1.0]


def test_lab_conversion(tmp_path):
    # L* = 50 with a* = b* = 0 (Pillow stores a/b offset by 128) is the sRGB grey 119:
    # Y = ((50 + 16) / 116) ** 3 = 0.1842, sRGB-encoded 0.4663 -> 118.9.
    path = tmp_path / "lab.tif"
    Image.new("LAB", (W, H), (128, 128, 128)).save(path)
    loaded = load_image(path)
    check_contract(loaded)
    assert pixel(loaded.rgb, 0, 0) == pytest.approx([119 / 255] * 3, abs=1.5 / 255)


def test_sixteen_bit_grayscale_keeps_precision(tmp_path):
    path = tmp_path / "gray16.png"
    image = Image.new("I;16", (W, H), 1000)
    image.putpixel((7, 2), 65535)
    image.save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really stored as 16-bit
    loaded = load_image(path)
    check_contract(loaded)
    value = loaded.rgb[0, 0, 0, 0].item()
    assert value == pytest.approx(1000 / 65535, rel=1e-6)
    # An 8-bit path would give a multiple of 1/255; 1000/65535 is not one.
    assert abs(value * 255 - round(value * 255)) > 0.1
    assert pixel(loaded.rgb, 7, 2) == [1.0, 1.0, 1.0]


def test_float_mode_is_clamped(tmp_path):
    path = tmp_path / "float.tif"
    values = np.full((H, W), 0.25, dtype=np.float32)
    values[0, 1] = 2.0
    values[0, 2] = -1.0
    Image.fromarray(values, mode="F").save(path)
    loaded = load_image(path)
    check_contract(loaded)
    assert pixel(loaded.rgb, 0, 0) == [0.25] * 3
    assert pixel(loaded.rgb, 1, 0) == [1.0] * 3
    assert pixel(loaded.rgb, 2, 0) == [0.0] * 3


def _write_png16_rgb(path, values):
    """A 16-bit RGB PNG written by hand (Pillow cannot write one): values (H, W, 3) uint16."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    height, width, _ = values.shape
    rows = b"".join(b"\0" + values[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_sixteen_bit_rgb_png_loads_to_within_8_bit(tmp_path):
    path = tmp_path / "rgb16.png"
    values = np.zeros((H, W, 3), dtype=np.uint16)
    values[..., 0] = 65535
    values[..., 1] = 32768
    values[..., 2] = 1000
    _write_png16_rgb(path, values)
    loaded = load_image(path)
    check_contract(loaded)
    expected = [65535 / 65535, 32768 / 65535, 1000 / 65535]
    assert pixel(loaded.rgb, 3, 3) == pytest.approx(expected, abs=1 / 255)


def test_animated_gif_uses_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (W, H), (255, 0, 0)), Image.new("RGB", (W, H), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    loaded = load_image(path)
    check_contract(loaded)
    assert pixel(loaded.rgb, 0, 0) == [1.0, 0.0, 0.0]


# --------------------------------------------------------------------------- alpha


def test_rgba_alpha_values_and_transparent_colour(tmp_path):
    path = tmp_path / "rgba.png"
    image = Image.new("RGBA", (W, H), (100, 150, 200, 255))
    image.putpixel((1, 1), (10, 20, 30, 128))
    image.putpixel((2, 1), (10, 20, 30, 0))
    image.save(path)
    loaded = load_image(path)
    check_contract(loaded)
    assert loaded.alpha is not None
    assert loaded.alpha[0, 0, 0, 0] == 1.0
    assert loaded.alpha[0, 0, 1, 1].item() == pytest.approx(128 / 255)
    assert loaded.alpha[0, 0, 1, 2] == 0.0
    # Colour is kept unpremultiplied where alpha > 0, white where alpha == 0.
    assert pixel(loaded.rgb, 1, 1) == pytest.approx([10 / 255, 20 / 255, 30 / 255], abs=1e-7)
    assert pixel(loaded.rgb, 2, 1) == [1.0, 1.0, 1.0]
    assert pixel(loaded.rgb, 0, 0) == pytest.approx([100 / 255, 150 / 255, 200 / 255], abs=1e-7)


def test_opaque_rgba_has_no_alpha(tmp_path):
    path = tmp_path / "opaque.png"
    Image.new("RGBA", (W, H), (1, 2, 3, 255)).save(path)
    loaded = load_image(path)
    check_contract(loaded)
    assert loaded.alpha is None
    assert pixel(loaded.rgb, 0, 0) == pytest.approx([1 / 255, 2 / 255, 3 / 255], abs=1e-7)


def test_la_image(tmp_path):
    path = tmp_path / "la.png"
    image = Image.new("LA", (W, H), (100, 255))
    image.putpixel((0, 0), (100, 50))
    image.save(path)
    loaded = load_image(path)
    check_contract(loaded)
    assert pixel(loaded.rgb, 0, 0) == pytest.approx([100 / 255] * 3, abs=1e-7)
    assert loaded.alpha[0, 0, 0, 0].item() == pytest.approx(50 / 255)
    assert loaded.alpha[0, 0, 5, 5].item() == 1.0


def test_rgb_colour_key_transparency(tmp_path):
    path = tmp_path / "key.png"
    image = Image.new("RGB", (W, H), (9, 9, 9))
    image.putpixel((4, 4), (1, 2, 3))
    image.save(path, transparency=(1, 2, 3))
    loaded = load_image(path)
    check_contract(loaded)
    assert loaded.alpha is not None
    assert loaded.alpha[0, 0, 4, 4] == 0.0
    assert float(loaded.alpha.sum()) == H * W - 1


# --------------------------------------------------------------------------- EXIF / ICC


def test_exif_orientation_6_rotates(tmp_path):
    path = tmp_path / "rotated.png"
    image = Image.new("RGB", (W, H), (0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0))  # stored top-left
    image.putpixel((W - 1, 0), (0, 255, 0))  # stored top-right
    exif = Image.Exif()
    exif[0x0112] = 6  # row 0 is the visual right side, column 0 the visual top
    image.save(path, exif=exif)
    loaded = load_image(path)
    check_contract(loaded, height=W, width=H)
    # Stored row 0 becomes the right-hand column, read top to bottom.
    assert pixel(loaded.rgb, H - 1, 0) == [1.0, 0.0, 0.0]
    assert pixel(loaded.rgb, H - 1, W - 1) == [0.0, 1.0, 0.0]
    assert pixel(loaded.rgb, 0, 0) == [0.0, 0.0, 0.0]


def _linear_rgb_icc_profile() -> bytes:
    """ICC v2 display profile: sRGB primaries (D50-adapted) with a linear (gamma 1.0) curve."""

    def xyz(x, y, z):
        return b"XYZ \0\0\0\0" + struct.pack(">iii", *(round(v * 65536) for v in (x, y, z)))

    text = b"Linear test RGB\0"
    desc = (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(text))
        + text
        + struct.pack(">II", 0, 0)
        + struct.pack(">HB", 0, 0)
        + b"\0" * 67
    )
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0100) + b"\0\0"  # gamma 1.0
    tags = [
        (b"desc", desc),
        (b"cprt", b"text\0\0\0\0public domain\0"),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        while len(data) % 4:
            data += b"\0"
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + struct.pack(">iii", *(round(v * 65536) for v in (0.9642, 1.0, 0.8249)))
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def _srgb_encode(linear: float) -> float:
    """IEC 61966-2-1 transfer function."""
    if linear <= 0.0031308:
        return 12.92 * linear
    return 1.055 * linear ** (1 / 2.4) - 0.055


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_non_srgb_icc_profile_is_converted(tmp_path, mode):
    pytest.importorskip(
        "PIL.ImageCms",
        reason="this Pillow has no littlecms (ImageCms); impasto then keeps the pixels as they are",
    )
    path = tmp_path / "linear.png"
    image = Image.new("RGB", (W, H), (128, 128, 128))
    image.putpixel((1, 0), (64, 128, 192))
    if mode == "RGBA":
        image.putalpha(200)
    image.save(path, icc_profile=_linear_rgb_icc_profile())
    loaded = load_image(path)
    check_contract(loaded)
    if mode == "RGBA":
        assert torch.allclose(loaded.alpha, torch.full((1, 1, H, W), 200 / 255))
    # Same primaries, so each channel just goes through the sRGB curve.
    grey = _srgb_encode(128 / 255)
    assert pixel(loaded.rgb, 0, 0) == pytest.approx([grey] * 3, abs=2 / 255)
    expected = [_srgb_encode(v / 255) for v in (64, 128, 192)]
    assert pixel(loaded.rgb, 1, 0) == pytest.approx(expected, abs=2 / 255)
    assert grey - 128 / 255 > 0.2  # the conversion really changed the values


def test_srgb_icc_profile_leaves_values_unchanged(tmp_path):
    image_cms = pytest.importorskip(
        "PIL.ImageCms",
        reason="this Pillow has no littlecms (ImageCms); impasto then keeps the pixels as they are",
    )
    path = tmp_path / "srgb.png"
    srgb = image_cms.ImageCmsProfile(image_cms.createProfile("sRGB")).tobytes()
    image = Image.new("RGB", (W, H), (128, 64, 32))
    image.save(path, icc_profile=srgb)
    loaded = load_image(path)
    assert pixel(loaded.rgb, 0, 0) == pytest.approx([128 / 255, 64 / 255, 32 / 255], abs=1 / 255)


def test_broken_icc_profile_is_ignored(tmp_path):
    path = tmp_path / "broken_icc.png"
    Image.new("RGB", (W, H), (128, 64, 32)).save(path, icc_profile=b"not a profile at all")
    loaded = load_image(path)
    assert pixel(loaded.rgb, 0, 0) == pytest.approx([128 / 255, 64 / 255, 32 / 255], abs=1e-7)


# --------------------------------------------------------------------------- size caps


@pytest.fixture
def small_png(tmp_path):
    path = tmp_path / "small.png"
    Image.new("RGB", (W, H), (5, 6, 7)).save(path)
    return path


@pytest.mark.parametrize("cap", [100, 300])  # Pillow's bomb error (> 2x cap) and warning (> cap)
def test_pixel_cap_refuses_large_images(small_png, cap):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may escape
        with pytest.raises(InputError) as info:
            load_image(small_png, max_pixels=cap)
    message = str(info.value)
    assert str(W * H) in message
    assert f"{cap}" in message
    assert "IMPASTO_MAX_PIXELS" in message
    assert "small.png" in message


def test_pixel_cap_does_not_rely_on_pillow(small_png, monkeypatch):
    monkeypatch.setattr(Image, "_decompression_bomb_check", lambda *args, **kwargs: None)
    with pytest.raises(InputError, match="exceeds the limit of 100 pixels"):
        load_image(small_png, max_pixels=100)


def test_pixel_cap_from_environment(small_png, monkeypatch):
    monkeypatch.setenv("IMPASTO_MAX_PIXELS", "100")
    with pytest.raises(InputError, match="100"):
        load_image(small_png)
    monkeypatch.setenv("IMPASTO_MAX_PIXELS", str(W * H))
    assert load_image(small_png).rgb.shape == (1, 3, H, W)
    monkeypatch.setenv("IMPASTO_MAX_PIXELS", "lots")
    with pytest.raises(InputError, match="IMPASTO_MAX_PIXELS"):
        load_image(small_png)
    # An explicit max_pixels wins over the environment.
    monkeypatch.setenv("IMPASTO_MAX_PIXELS", "100")
    assert load_image(small_png, max_pixels=W * H).rgb.shape == (1, 3, H, W)


def test_pillow_global_limit_neither_blocks_nor_changes(small_png, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # Pillow alone would refuse 384 px
    loaded = load_image(small_png, max_pixels=1000)
    assert loaded.rgb.shape == (1, 3, H, W)
    assert Image.MAX_IMAGE_PIXELS == 50  # restored after the call


# --------------------------------------------------------------------------- unreadable input


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found") as info:
        load_image(tmp_path / "nope.png")
    assert "nope.png" in str(info.value)


def test_directory(tmp_path):
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path)


@pytest.mark.parametrize("content", [b"hello, I am text\n", b""])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not an image file") as info:
        load_image(path)
    assert "fake.png" in str(info.value)


def test_truncated_png(tmp_path):
    path = tmp_path / "full.png"
    noise = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as info:
        load_image(cut)
    assert "cut.png" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file"
)
def test_unreadable_file(small_png):
    small_png.chmod(0)
    try:
        with pytest.raises(InputError, match="permission denied"):
            load_image(small_png)
    finally:
        small_png.chmod(0o644)


def test_permission_error_is_reported(small_png, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(decode.os, "open", refuse)  # load_image opens with os.open (non-blocking)
    with pytest.raises(InputError, match="permission denied") as info:
        load_image(small_png)
    assert "small.png" in str(info.value)


# --------------------------------------------------------------------------- saving


def ramp(height=H, width=W, channels=3, levels=255):
    """Deterministic values that are exact multiples of 1/levels."""
    count = channels * height * width
    steps = torch.arange(count, dtype=torch.float64).reshape(1, channels, height, width)
    return ((steps * 37) % (levels + 1) / levels).float()


def test_png_round_trip_is_exact(tmp_path):
    rgb = ramp()
    out = save_image(rgb, tmp_path / "out.png")
    assert out == tmp_path / "out.png"
    with Image.open(out) as image:
        assert image.mode == "RGB"
        stored = np.asarray(image)
    expected = np.rint(rgb[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert np.array_equal(stored, expected)
    assert torch.equal(load_image(out).rgb, rgb)


def test_quantisation_rounds_and_clamps(tmp_path):
    rgb = torch.zeros(1, 3, 2, 2)
    rgb[0, :, 0, 0] = torch.tensor([0.5, -0.3, 1.7])  # 127.5 rounds to even -> 128 or 127
    rgb[0, :, 0, 1] = torch.tensor([10.4 / 255, 10.6 / 255, float("nan")])
    out = save_image(rgb, tmp_path / "q.png")
    with Image.open(out) as image:
        assert image.getpixel((0, 0))[1:] == (0, 255)
        assert image.getpixel((0, 0))[0] in (127, 128)
        assert image.getpixel((1, 0)) == (10, 11, 0)


def test_png_with_alpha(tmp_path):
    rgb = ramp()
    alpha = ramp(channels=1)
    out = save_image(rgb, tmp_path / "alpha.PNG", alpha=alpha)
    with Image.open(out) as image:
        assert image.mode == "RGBA"
        stored = np.asarray(image)
    assert np.array_equal(stored[..., 3], np.rint(alpha[0, 0].numpy() * 255).astype(np.uint8))
    loaded = load_image(out)
    assert torch.equal(loaded.alpha, alpha)


def test_jpeg_round_trip_and_alpha_over_white(tmp_path):
    rgb = torch.zeros(1, 3, H, W)
    rgb[0, 0] = 0.8
    rgb[0, 1] = 0.4
    rgb[0, 2] = 0.1
    out = save_image(rgb, tmp_path / "out.jpg", quality=95)
    loaded = load_image(out)
    assert (loaded.rgb - rgb).abs().mean() < 0.02
    alpha = torch.zeros(1, 1, H, W)  # fully transparent: JPEG shows white
    out = save_image(rgb, tmp_path / "clear.jpeg", alpha=alpha)
    with Image.open(out) as image:
        assert image.mode == "RGB"
    assert load_image(out).rgb.min() > 0.95


def test_webp_round_trip_with_alpha(tmp_path):
    rgb = torch.full((1, 3, H, W), 0.5)
    alpha = torch.ones(1, 1, H, W)
    alpha[..., :, : W // 2] = 0.25
    out = save_image(rgb, tmp_path / "out.webp", alpha=alpha, quality=90)
    with Image.open(out) as image:
        assert image.format == "WEBP"
    loaded = load_image(out)
    assert loaded.alpha is not None
    assert (loaded.alpha - alpha).abs().max() < 0.02
    assert (loaded.rgb - rgb).abs().mean() < 0.03


def _read_tiff(path):
    """Independent minimal reader: tags of the first IFD and the raw strip as uint16."""
    data = path.read_bytes()
    assert data[:4] == b"II*\0"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    sizes = {2: 1, 3: 2, 4: 4, 5: 8, 7: 1}  # ASCII and UNDEFINED: ImageDescription, ICC
    tags = {}
    for index in range(count):
        tag, kind, n, field = struct.unpack_from("<HHI4s", data, ifd + 2 + 12 * index)
        size = sizes[kind] * n
        raw = field[:size] if size <= 4 else data[struct.unpack("<I", field)[0] :][:size]
        if kind in (2, 7):
            tags[tag] = raw
            continue
        code = {3: "H", 4: "I", 5: "I"}[kind]
        tags[tag] = list(struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw))
    offset, nbytes = tags[273][0], tags[279][0]
    return tags, np.frombuffer(data[offset : offset + nbytes], dtype="<u2")


@pytest.mark.parametrize("with_alpha", [False, True])
def test_tiff_is_16_bit_and_exact(tmp_path, with_alpha):
    rgb = ramp(levels=65535)
    alpha = ramp(channels=1, levels=65535) if with_alpha else None
    out = save_image(rgb, tmp_path / "deep.tif", alpha=alpha)
    tags, raw = _read_tiff(out)
    samples = 4 if with_alpha else 3
    assert tags[256] == [W] and tags[257] == [H]
    assert tags[258] == [16] * samples
    assert tags[259] == [1] and tags[262] == [2] and tags[277] == [samples]
    assert tags.get(338) == ([2] if with_alpha else None)
    pixels = raw.reshape(H, W, samples)
    steps = np.arange(3 * H * W, dtype=np.int64).reshape(3, H, W)
    assert np.array_equal(pixels[..., :3], ((steps * 37) % 65536).transpose(1, 2, 0))
    assert len(np.unique(pixels[..., :3])) > 256  # really more than 8 bits of levels
    if with_alpha:
        alpha_steps = np.arange(H * W, dtype=np.int64).reshape(H, W)
        assert np.array_equal(pixels[..., 3], (alpha_steps * 37) % 65536)
    # Pillow reads the file too (it reduces it to 8 bits).
    with Image.open(out) as image:
        assert image.size == (W, H)
        assert image.mode == ("RGBA" if with_alpha else "RGB")
    loaded = load_image(out)
    visible = torch.ones(1, 1, H, W, dtype=torch.bool)
    if with_alpha:
        assert (loaded.alpha - alpha).abs().max() <= 1 / 255
        visible = loaded.alpha > 0  # Pillow decodes to 8 bits: tiny alphas become 0 -> white
        assert not visible.all()
        assert torch.all(loaded.rgb.masked_select(~visible.expand_as(rgb)) == 1.0)
    difference = (loaded.rgb - rgb).abs().masked_select(visible.expand_as(rgb))
    assert difference.max() <= 1 / 255


def test_unknown_or_missing_extension(tmp_path):
    rgb = ramp()
    for name in ("out.bmp", "out"):
        with pytest.raises(InputError) as info:
            save_image(rgb, tmp_path / name)
        for extension in OUTPUT_FORMATS:
            assert extension in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        save_image(ramp(), tmp_path / "missing" / "out.png")


def test_bad_quality(tmp_path):
    with pytest.raises(InputError, match="quality"):
        save_image(ramp(), tmp_path / "out.jpg", quality=0)
    assert list(tmp_path.iterdir()) == []


def test_bad_tensor_shape(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        save_image(torch.zeros(2, 3, 4, 4), tmp_path / "out.png")


def _interrupting_save(self, fp, *args, **kwargs):
    fp.write(b"\x89PNG partial data")
    raise KeyboardInterrupt


def test_interrupted_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(Image.Image, "save", _interrupting_save)
    with pytest.raises(KeyboardInterrupt):
        save_image(ramp(), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_save_keeps_existing_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous result")
    monkeypatch.setattr(Image.Image, "save", _interrupting_save)
    with pytest.raises(KeyboardInterrupt):
        save_image(ramp(), target)
    assert target.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_failed_tiff_write_leaves_nothing(tmp_path, monkeypatch):
    def failing_writer(handle, pixels, **tags):
        handle.write(b"II*\0")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(encode, "_write_tiff16", failing_writer)
    with pytest.raises(InputError, match="No space left"):
        save_image(ramp(), tmp_path / "out.tiff")
    assert list(tmp_path.iterdir()) == []


def test_saved_file_is_not_private(tmp_path):
    out = save_image(ramp(), tmp_path / "out.png")
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


# --------------------------------------------------------------------------- check_output_path


def test_check_output_path_accepts_new_file(tmp_path):
    assert check_output_path(str(tmp_path / "new.webp")) == tmp_path / "new.webp"


def test_check_output_path_refuses_input(small_png, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match="would overwrite an input"):
        check_output_path(small_png, inputs=[small_png])
    with pytest.raises(InputError, match="would overwrite an input"):
        check_output_path("sub/../small.png", inputs=["other.jpg", "small.png"])
    link = tmp_path / "link.png"
    link.symlink_to(small_png)
    with pytest.raises(InputError, match="would overwrite an input"):
        check_output_path(link, inputs=[small_png])
    assert check_output_path("sub/small.png", inputs=["small.png"]) == tmp_path.joinpath(
        "sub/small.png"
    ).relative_to(tmp_path)


def test_check_output_path_refuses_bad_paths(tmp_path):
    folder = tmp_path / "looks_like.png"
    folder.mkdir()
    with pytest.raises(InputError, match="directory"):
        check_output_path(folder)
    with pytest.raises(InputError, match=r"\.tiff"):
        check_output_path(tmp_path / "out.gif")
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "nowhere" / "out.png")


# --------------------------------------------------------------------------- resizing / preview


def test_resize_long_side_keeps_aspect():
    image = torch.rand(2, 3, 50, 100)
    small = resize_long_side(image, 40)
    assert small.shape == (2, 3, 20, 40)
    tall = resize_long_side(torch.rand(1, 3, 100, 50), 40)
    assert tall.shape == (1, 3, 40, 20)
    assert resize_long_side(torch.rand(1, 1, 1, 1000), 10).shape == (1, 1, 1, 10)
    assert resize_long_side(torch.rand(1, 3, 8, 8), 64).shape == (1, 3, 64, 64)


def test_resize_clamps_overshoot_and_keeps_constants():
    step = torch.zeros(1, 3, 32, 32)
    step[..., 16:] = 1.0  # bicubic overshoots at a hard edge
    for result in (resize_long_side(step, 20), resize_long_side(step, 64)):
        assert float(result.min()) >= 0.0 and float(result.max()) <= 1.0
    flat = torch.full((1, 3, 30, 60), 0.3)
    assert torch.allclose(resize_long_side(flat, 17), torch.full((1, 3, 8, 17), 0.3), atol=1e-5)


def test_resize_antialiases_when_shrinking():
    y, x = torch.meshgrid(torch.arange(63), torch.arange(63), indexing="ij")
    checker = ((x + y) % 2).float().expand(1, 3, 63, 63)
    small = resize_long_side(checker, 9)
    # Shrinking by 7 puts sample points on pixel centres: without antialiasing they would
    # read single checker pixels (0 or 1); a low-pass filter averages them to about 0.5.
    assert small.shape == (1, 3, 9, 9)
    assert (small - 0.5).abs().max() < 0.05


def test_resize_to_and_bad_sizes():
    assert resize_to(torch.rand(1, 3, 10, 10), 7, 13).shape == (1, 3, 7, 13)
    with pytest.raises(InputError):
        resize_long_side(torch.rand(1, 3, 10, 10), 0)
    with pytest.raises(ValueError):
        resize_long_side(torch.rand(3, 10, 10), 5)


def test_to_pil():
    rgb = ramp()
    image = to_pil(rgb)
    assert image.mode == "RGB" and image.size == (W, H)
    assert image.getpixel((3, 2)) == tuple(round(v * 255) for v in pixel(rgb, 3, 2))
    with_alpha = to_pil(rgb[0], alpha=torch.full((1, 1, H, W), 0.5))
    assert with_alpha.mode == "RGBA"
    assert with_alpha.getpixel((0, 0))[3] in (127, 128)


# --------------------------------------------------------------------------- contact sheets
# Layout (see impasto.images.sheet): 4 px padding around and between cells; each grid row is
# the cell square, 4 px, four 12 px label lines and 4 px. With cell=32 a grid row is 88 px,
# column c starts at x = 4 + 36 c, grid row r at y = 4 + 88 r, labels 4 px under the square.

CELL = 32


def solid(colour, height, width):
    """(1, 3, height, width) image of one RGB colour in [0, 1]."""
    return torch.tensor(colour, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, height, width)


def dark_pixels(sheet_tensor):
    """(y, x) of every pixel with a channel below 0.5: label text on white."""
    return (sheet_tensor[0] < 0.5).any(dim=0).nonzero().tolist()


def test_sheet_size_follows_the_layout():
    assert sheet_size(1, CELL) == (40, 92)
    assert sheet_size(6, CELL) == (4 * 36 + 4, 2 * 88 + 4)  # four columns by default
    assert sheet_size(6, CELL, columns=3) == (3 * 36 + 4, 2 * 88 + 4)
    assert sheet_size(2, CELL, columns=5) == (5 * 36 + 4, 92)
    assert sheet_size(5, 256) == (4 * 260 + 4, 2 * (256 + 56) + 4)


def test_sheet_refuses_bad_layouts():
    with pytest.raises(InputError, match="cell"):
        sheet_size(2, 15)
    with pytest.raises(InputError, match="columns"):
        sheet_size(2, CELL, columns=0)
    with pytest.raises(ValueError, match="at least one cell"):
        draw_sheet([], CELL)
    with pytest.raises(TypeError, match="list of strings"):
        draw_sheet([(solid((1, 0, 0), 4, 4), "one label")], CELL)


def test_draw_sheet_is_a_white_float_image_of_sheet_size():
    cells = [(solid((0, 0, 0), 8, 8), []) for _ in range(5)]
    drawn = draw_sheet(cells, CELL)
    width, height = sheet_size(5, CELL)
    assert drawn.shape == (1, 3, height, width) and drawn.dtype == torch.float32
    assert float(drawn.min()) == 0.0 and float(drawn.max()) == 1.0
    assert drawn[0, :, :4, :].eq(1).all() and drawn[0, :, :, :4].eq(1).all()  # padding
    # No labels: everything under the first grid row's squares is background.
    assert drawn[0, :, 4 + CELL : 4 + 88, :].eq(1).all()


def test_draw_sheet_places_thumbnails_bottom_aligned_and_centred():
    red, green, blue = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    cells = [
        (solid(red, 16, 32), []),  # wide: 32 x 16 thumbnail, at the bottom of its square
        (solid(green, 32, 16)[0], []),  # tall, (3, H, W): 16 x 32, centred across
        (solid(blue, 8, 8).half(), []),  # small: scaled up to fill the square
    ]
    drawn = draw_sheet(cells, CELL, columns=2)
    assert drawn.shape[-2:] == (2 * 88 + 4, 2 * 36 + 4)

    def region(top, left, height, width):
        return drawn[0, :, top : top + height, left : left + width]

    def is_colour(block, colour):
        return torch.allclose(block, torch.tensor(colour).view(3, 1, 1).expand_as(block), atol=0.02)

    white = (1.0, 1.0, 1.0)
    assert is_colour(region(4, 4, 16, 32), white)  # above the wide picture
    assert is_colour(region(20, 4, 16, 32), red)
    assert is_colour(region(4, 40, 32, 8), white)  # left of the tall picture
    assert is_colour(region(4, 48, 32, 16), green)
    assert is_colour(region(4, 64, 32, 8), white)  # right of it
    assert is_colour(region(92, 4, 32, 32), blue)  # second grid row
    assert is_colour(region(92, 40, 32, 32), white)  # no fourth cell


def test_draw_sheet_writes_each_label_under_its_own_cell():
    white = (1.0, 1.0, 1.0)
    cells = [(solid(white, 8, 8), []), (solid(white, 8, 8), ["ab", "cd"]), (solid(white, 8, 8), [])]
    dark = dark_pixels(draw_sheet(cells, CELL))
    assert dark, "the label drew nothing"
    assert all(40 <= x < 40 + CELL and 40 <= y < 40 + 2 * 12 for y, x in dark)
    assert any(y < 52 for y, _ in dark) and any(y >= 52 for y, _ in dark)  # two lines


def test_draw_sheet_wraps_labels_to_the_cell_width_and_four_lines():
    white = (1.0, 1.0, 1.0)
    cells = [(solid(white, 8, 8), ["W" * 80]), (solid(white, 8, 8), [])]
    dark = dark_pixels(draw_sheet(cells, CELL))
    assert all(4 <= x < 4 + CELL for _, x in dark)  # wrapped, not spilling into the next cell
    lines_used = {(y - 40) // 12 for y, _ in dark}
    assert lines_used == {0, 1, 2, 3}  # 80 wide letters need more lines than the four drawn


def test_draw_sheet_keeps_the_first_and_last_two_label_lines():
    picture = solid((0.2, 0.4, 0.6), 10, 12)

    def drawn(lines):
        return draw_sheet([(picture, lines)], CELL)

    six = drawn(["one", "two", "three", "four", "five", "six"])
    assert torch.equal(six, drawn(["one", "two", "five", "six"]))
    assert not torch.equal(six, drawn(["one", "two", "three", "four"]))
