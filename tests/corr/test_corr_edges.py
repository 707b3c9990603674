"""Edges of the correlation loss: sample-size bounds, the public sampler on the CPU, padding and
empty structures, batched gradients, the per-structure variance floor, and the input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnff_stability.train import corr
from gnnff_stability.train.corr import (
    correlation_loss,
    offdiag_abs_pearson,
    offdiag_mean_abs,
    pearson_matrix,
    sample_per_structure,
    sampled_correlation_loss,
    validate_sample_size,
)


def _offdiag(c: np.ndarray) -> float:
    d = c.shape[0]
    return float((np.abs(c).sum() - np.abs(np.diag(c)).sum()) / (d * (d - 1)))


@pytest.mark.parametrize(("given", "expected"), [(2, 2), (np.int64(7), 7), ("sqrt", "sqrt"), (None, None)])
def test_accepted_sample_sizes(given, expected):
    got = validate_sample_size(given)
    assert got == expected and type(got) is type(expected)


def test_the_cpu_sampler_draws_per_structure_permutations_with_the_given_generator():
    counts = [30, 4, 100]
    segment = torch.repeat_interleave(torch.arange(3), torch.tensor(counts))
    index, mask = sample_per_structure(segment, 3, 5, torch.Generator().manual_seed(3))
    # the documented CPU draw: randperm(n_s)[:k] of each structure, in order, from the generator (a
    # structure with at most k rows takes them all, without a draw)
    generator = torch.Generator().manual_seed(3)
    start, want = 0, []
    for n in counts:
        want.append(torch.randperm(n, generator=generator)[:5] + start if n > 5 else torch.arange(start, start + n))
        start += n
    for s in range(3):
        assert torch.equal(index[s][mask[s]], want[s])
    assert mask.sum(1).tolist() == [5, 4, 5]
    index, mask = sample_per_structure(segment, 3, "sqrt", torch.Generator().manual_seed(3))
    assert mask.sum(1).tolist() == [5, 2, 10]
    with pytest.raises(ValueError, match=r"sample_edges must be an integer >= 2"):
        sample_per_structure(segment, 3, 1)
    with pytest.raises(ValueError, match=r"segment must be 1-D \[n_rows\], got shape \(2, 67\)"):
        sample_per_structure(segment.view(2, -1), 3, 5)


def test_rows_out_of_structure_order_are_mapped_back():
    for segment in (torch.tensor([1, 0]), torch.tensor([0, 2, 1])):
        n_structures = int(segment.max()) + 1
        index, mask = sample_per_structure(segment, n_structures, None)
        for s in range(n_structures):
            assert torch.equal(segment[index[s][mask[s]]], torch.full((1,), s))


def test_padding_trailing_and_all_empty_structures():
    # structure 2 and 3 have no rows (the last ones: bincount alone would not see them)
    segment = torch.tensor([0, 0, 0, 1])
    index, mask = sample_per_structure(segment, 4, "sqrt", torch.Generator().manual_seed(0))
    assert index.shape == mask.shape == (4, 1)  # floor(sqrt(3)) = floor(sqrt(1)) = 1: width 1
    assert mask.tolist() == [[True], [True], [False], [False]]
    assert 0 <= int(index[0, 0]) < 3 and int(index[1, 0]) == 3
    index, mask = sample_per_structure(torch.tensor([0, 0, 1, 1]), 2, 2, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.all() and index.shape == (2, 2)
    assert sorted(index[0].tolist()) == [0, 1] and sorted(index[1].tolist()) == [2, 3]
    index, mask = sample_per_structure(torch.zeros(0, dtype=torch.long), 2, 4)
    assert index.shape == mask.shape == (2, 1) and not mask.any()


def test_device_sampler_pads_without_reading_back():
    # the device path, run on the CPU: a structure with no rows after the last row, and width 1
    index, mask = corr._sample_device(torch.tensor([0]), 2, None, torch.Generator().manual_seed(0))
    assert index.shape == (2, 1) and mask.tolist() == [[True], [False]] and int(index[0, 0]) == 0
    index, mask = corr._sample_device(torch.zeros(0, dtype=torch.long), 1, 3, torch.Generator().manual_seed(0))
    assert index.shape == (1, 1) and not mask.any()


def test_batched_pearson_gradient_matches_finite_differences():
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(2, 5, 3, dtype=torch.float64, generator=generator)
    x[..., 1] += 0.5 * x[..., 0]
    weights = torch.randn(3, 3, dtype=torch.float64, generator=generator)  # not symmetric
    assert torch.autograd.gradcheck(lambda t: (pearson_matrix(t) * weights).sum(-1), (x.requires_grad_(True),))
    assert torch.autograd.gradcheck(lambda t: (pearson_matrix(t[0]) * weights).sum(), (x,))


def test_the_variance_floor_is_per_structure():
    # eps 1: the diagonal is var / (var + mean var) of each structure's own columns; structures of
    # very different scales keep their own floor
    rng = np.random.default_rng(8)
    x = np.stack([rng.normal(size=(50, 3)), 1e3 * rng.normal(size=(50, 3))])
    got = pearson_matrix(torch.tensor(x), eps=1.0).numpy()
    for s in range(2):
        var = x[s].var(axis=0)
        np.testing.assert_allclose(np.diag(got[s]), var / (var + var.mean()), rtol=1e-10)


def test_two_columns_are_enough_and_one_is_refused():
    c = torch.tensor([[1.0, -0.25], [0.75, 1.0]])
    assert offdiag_mean_abs(c).item() == pytest.approx(0.5)
    c3 = torch.tensor([[2.0, 0.1, -0.2], [0.3, -1.0, 0.4], [0.5, -0.6, 1.0]])
    assert offdiag_mean_abs(c3).item() == pytest.approx((0.1 + 0.2 + 0.3 + 0.4 + 0.5 + 0.6) / 6)
    with pytest.raises(ValueError, match=r"at least 2 feature columns, got 1"):
        offdiag_mean_abs(torch.ones(1, 1))
    with pytest.raises(ValueError, match=r"at least 2 feature columns, got 1"):
        offdiag_abs_pearson(torch.randn(2, 6, 1))
    with pytest.raises(ValueError, match=r"x must be \[structures, rows, columns\], got shape \(6, 3\)"):
        offdiag_abs_pearson(torch.randn(6, 3))
    with pytest.raises(ValueError, match=r"x must be \[\.\.\., rows, columns\], got shape \(6,\)"):
        pearson_matrix(torch.randn(6))
    with pytest.raises(ValueError, match=r"rows must be \[n_rows, n_columns\], got shape \(6,\)"):
        correlation_loss(torch.randn(6), torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool))


def test_a_full_sample_narrower_than_the_features_and_three_dimensional_input():
    # every structure fills its sample of 3 rows (no masking); 5 feature columns, more than the rows
    rng = np.random.default_rng(9)
    rows = rng.normal(size=(12, 5))
    segment = torch.repeat_interleave(torch.arange(2), torch.tensor([6, 6]))
    index, mask = sample_per_structure(segment, 2, 3, torch.Generator().manual_seed(1))
    assert mask.all()
    loss, per = correlation_loss(torch.tensor(rows), index, mask, eps=0.0)
    want = [_offdiag(np.corrcoef(rows[index[s].numpy()], rowvar=False)) for s in range(2)]
    np.testing.assert_allclose(per[:, 0].numpy(), want, atol=1e-10)
    assert per.shape == (2, 1) and loss.item() == pytest.approx(np.mean(want), abs=1e-10)
    gathered = torch.tensor(rows)[index]  # [S, K, D]
    loss3, per3 = sampled_correlation_loss(gathered, mask, eps=0.0)
    torch.testing.assert_close(per3, per)


def test_a_structure_with_two_sampled_rows_counts():
    # two rows: any two varying columns are perfectly (anti)correlated, value 1; one row: left out
    rows = torch.tensor([[0.0, 1.0, 5.0], [1.0, -2.0, 4.0], [3.0, 3.0, 3.0], [7.0, 1.0, 0.0]], dtype=torch.float64)
    index = torch.tensor([[0, 1], [2, 2], [3, 3]])
    mask = torch.tensor([[True, True], [True, False], [True, True]])
    loss, per = correlation_loss(rows, index, mask, eps=0.0)
    np.testing.assert_allclose(per[:, 0].numpy(), [1.0, 0.0, 0.0], atol=1e-12)
    assert loss.item() == pytest.approx(1.0 / 2)  # two structures with >= 2 rows
