"""--keep (impasto.regions.keep_blend, applied by Prepared.checked_run for every method): the
masked photo comes back exactly, the edge is feathered outwards, a grey mask keeps a share, and
a mask that cannot be read is one line with exit code 2 and no file (every method's own run
is in test_method_contract)."""

from __future__ import annotations

import torch
from helpers import error_line, run_cli, write_image

from impasto.regions import keep_blend


def test_keep_blend_puts_the_photo_back_inside_and_feathers_outwards():
    result, photo = torch.zeros(1, 3, 100, 600), torch.ones(1, 3, 100, 600)
    keep = torch.zeros(1, 1, 100, 600)
    keep[..., :300] = 1.0
    out = keep_blend(result, photo, keep)  # feather: two box blurs of 3 px (1/200 of 600)
    assert torch.equal(out[..., :300], photo[..., :300])  # every kept pixel, to the edge
    assert torch.equal(out[..., 306:], result[..., 306:])  # beyond the feather: the result
    ramp = out[0, 0, 50, 300:306]
    assert bool((ramp > 0).all() and (ramp < 1).all() and (ramp[1:] <= ramp[:-1]).all())


def test_keep_blend_with_grey_keeps_that_share_and_resizes_everything_to_the_result():
    result, photo = torch.zeros(1, 3, 40, 60), torch.ones(1, 3, 20, 30)
    out = keep_blend(result, photo, torch.full((1, 1, 10, 15), 0.25))
    assert out.shape == result.shape and torch.allclose(out, torch.full_like(out, 0.25))


def test_a_keep_mask_that_cannot_be_read_is_one_line_and_writes_nothing(capsys, tmp_path):
    photo = write_image(tmp_path / "photo.png", 1, size=(64, 48))
    out = tmp_path / "out.png"
    code, _out, err = run_cli(capsys, "stylize", str(photo), "--model", "vangogh-bedroom",
                              "--keep", str(tmp_path / "missing.png"), "-o", str(out))  # fmt: skip
    assert code == 2 and "missing.png" in error_line(err) and "Traceback" not in err
    assert not out.exists()
