"""Image files in and out, resizing and contact sheets: the only package that touches Pillow.

Inside the library an image is a float32 tensor of shape (B, 3, H, W) with sRGB values in
[0, 1]; an alpha matte is (B, 1, H, W) in [0, 1]. This package turns files into that form
(EXIF orientation, ICC profile -> sRGB, alpha, decompression-bomb guard) and back (atomic
writes, 8-bit PNG/JPEG/WebP, 16-bit TIFF), resizes, and draws labelled contact sheets.

- ``decode``: load_image, LoadedImage, the pixel cap (pixel_cap, DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV)
- ``encode``: save_image, check_output_path, OUTPUT_FORMATS, to_pil
- ``resize``: resize_to, resize_long_side, long_side_shape
- ``sheet``: draw_sheet, sheet_size
- ``plot``: draw_curve (a small line chart)
"""

from .decode import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, LoadedImage, load_image, pixel_cap
from .encode import OUTPUT_FORMATS, check_output_path, save_image, to_pil
from .plot import draw_curve
from .resize import long_side_shape, resize_long_side, resize_to
from .sheet import draw_sheet, sheet_size

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "OUTPUT_FORMATS",
    "LoadedImage",
    "check_output_path",
    "draw_curve",
    "draw_sheet",
    "load_image",
    "long_side_shape",
    "pixel_cap",
    "resize_long_side",
    "resize_to",
    "save_image",
    "sheet_size",
    "to_pil",
]
