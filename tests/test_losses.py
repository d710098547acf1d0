"""Known values of the loss functions (hand computations, no reference to the code's output)."""

import pytest
import torch

from impasto.losses import content_loss, gram_matrix, style_loss, tv_loss


def orthogonal_features() -> torch.Tensor:
    """(1, 2, 2, 2): channel 0 = [1, 0, 1, 0], channel 1 = [0, 3, 0, 3] over the 4 positions."""
    channel0 = torch.tensor([1.0, 0.0, 1.0, 0.0])
    channel1 = torch.tensor([0.0, 3.0, 0.0, 3.0])
    return torch.stack([channel0, channel1]).reshape(1, 2, 2, 2)


def test_gram_of_orthogonal_channels_is_diagonal_with_energies_over_positions():
    features = orthogonal_features()
    batch = torch.cat([features, 2 * features])  # second item: every product x4
    gram = gram_matrix(batch)
    # channel 0: 1 + 1 = 2 over 4 positions; channel 1: 9 + 9 = 18 over 4; cross terms are 0.
    expected = torch.tensor([[2 / 4, 0.0], [0.0, 18 / 4]])
    assert gram.shape == (2, 2, 2)
    torch.testing.assert_close(gram[0], expected)
    torch.testing.assert_close(gram[1], 4 * expected)


def test_gram_is_symmetric():
    features = torch.randn(3, 5, 4, 6, generator=torch.Generator().manual_seed(0))
    gram = gram_matrix(features)
    assert gram.shape == (3, 5, 5)
    torch.testing.assert_close(gram, gram.transpose(1, 2))


def test_gram_does_not_grow_when_a_pattern_is_tiled_to_a_larger_image():
    pattern = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    tiled = pattern.repeat(1, 1, 2, 2)  # 4x4: each position's vector appears 4 times
    assert tiled.shape == (1, 4, 4, 4)
    torch.testing.assert_close(gram_matrix(tiled), gram_matrix(pattern))


def test_style_loss_is_zero_for_equal_grams():
    gram = gram_matrix(torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(2)))
    assert style_loss(gram, gram.clone()).item() == 0.0


def test_style_loss_is_one_when_the_gram_is_zero():
    # Relative normalisation: ||0 - A||^2 / ||A||^2 = 1 for any non-zero target.
    target = gram_matrix(torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(3)))
    assert style_loss(torch.zeros_like(target), target).item() == pytest.approx(1.0, abs=1e-6)


def test_style_loss_of_twice_the_target_is_one():
    target = gram_matrix(torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(4)))
    # ||2A - A||^2 / ||A||^2 = 1
    assert style_loss(2 * target, target).item() == pytest.approx(1.0, abs=1e-5)


def test_style_loss_is_unchanged_when_both_grams_are_scaled():
    generator = torch.Generator().manual_seed(5)
    gram = gram_matrix(torch.randn(1, 3, 4, 4, generator=generator))
    target = gram_matrix(torch.randn(1, 3, 4, 4, generator=generator))
    base = style_loss(gram, target).item()
    assert base > 0.01
    assert style_loss(1000 * gram, 1000 * target).item() == pytest.approx(base, rel=1e-5)


def test_content_loss_is_zero_for_identical_features():
    features = torch.randn(1, 4, 5, 5, generator=torch.Generator().manual_seed(6))
    assert content_loss(features, features.clone()).item() == 0.0


def test_content_loss_is_one_against_zeros():
    target = torch.randn(1, 4, 5, 5, generator=torch.Generator().manual_seed(7))
    assert content_loss(torch.zeros_like(target), target).item() == pytest.approx(1.0, abs=1e-6)


def test_content_loss_is_unchanged_when_both_are_scaled():
    generator = torch.Generator().manual_seed(8)
    features = torch.randn(1, 4, 5, 5, generator=generator)
    target = torch.randn(1, 4, 5, 5, generator=generator)
    base = content_loss(features, target).item()
    assert base > 0.01
    assert content_loss(50 * features, 50 * target).item() == pytest.approx(base, rel=1e-5)


def test_tv_of_a_constant_image_is_exactly_zero():
    assert tv_loss(torch.full((2, 3, 7, 9), 0.37)).item() == 0.0


def test_tv_of_vertical_stripes_is_the_mean_squared_step():
    # Rows [0, 0.5, 0, 0.5] (stripes along the width), 2 rows, 1 channel.
    row = torch.tensor([0.0, 0.5, 0.0, 0.5])
    image = row.repeat(2, 1).reshape(1, 1, 2, 4)
    # Horizontal differences: 2 rows x 3 pairs, each +-0.5 -> squared 0.25, mean 0.25.
    # Vertical differences: the two rows are equal -> 0.
    assert tv_loss(image).item() == pytest.approx(0.25, abs=1e-7)


def test_tv_of_horizontal_stripes_counts_vertical_steps():
    column = torch.tensor([0.0, 1.0, 0.0])
    image = column.reshape(3, 1).repeat(1, 5).reshape(1, 1, 3, 5)
    # Vertical differences: 2 x 5 pairs, each +-1 -> mean 1; horizontal differences 0.
    assert tv_loss(image).item() == pytest.approx(1.0, abs=1e-7)
