"""Correlation matrix, loss and per-structure sampling against direct numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnnff_stability.train import corr
from gnnff_stability.train.corr import (
    correlation_loss,
    offdiag_mean_abs,
    pearson_matrix,
    sample_per_structure,
    validate_sample_size,
)


def pearson_matrix_numpy(x: np.ndarray) -> np.ndarray:
    """Reference Pearson matrix of the columns of ``x`` ``[n, d]`` in numpy (constant columns -> 0)."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    corr = z.T @ z / x.shape[0]
    const = std == 0
    corr[const, :] = 0.0
    corr[:, const] = 0.0
    return corr


def _offdiag_numpy(corr: np.ndarray) -> float:
    d = corr.shape[0]
    return float((np.abs(corr).sum() - np.abs(np.diag(corr)).sum()) / (d * (d - 1)))


def test_pearson_matches_numpy_corrcoef():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))  # correlated columns
    ours = pearson_matrix(torch.tensor(x), eps=0.0).numpy()
    np.testing.assert_allclose(ours, np.corrcoef(x, rowvar=False), atol=1e-12)
    np.testing.assert_allclose(ours, pearson_matrix_numpy(x), atol=1e-12)
    loss = offdiag_mean_abs(torch.tensor(ours)).item()
    assert loss == pytest.approx(_offdiag_numpy(np.corrcoef(x, rowvar=False)), abs=1e-12)


def test_masked_rows_are_ignored_and_batched():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 50, 4))
    mask = np.zeros((3, 50), dtype=bool)
    mask[0, :50] = True
    mask[1, :20] = True
    mask[2, 10:40] = True
    x_t = torch.tensor(x)
    x_t[~torch.tensor(mask)] = 1e6  # garbage in padded rows must not leak
    ours = pearson_matrix(x_t, torch.tensor(mask), eps=0.0).numpy()
    for s in range(3):
        np.testing.assert_allclose(ours[s], np.corrcoef(x[s][mask[s]], rowvar=False), atol=1e-10)


def test_perfectly_correlated_columns_give_one_and_independent_near_zero():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(4000, 1))
    signs = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
    dependent = base * signs + 7.0  # every column a linear function of every other
    assert offdiag_mean_abs(pearson_matrix(torch.tensor(dependent))).item() == pytest.approx(1.0, abs=1e-6)
    independent = rng.normal(size=(4000, 5))
    value = offdiag_mean_abs(pearson_matrix(torch.tensor(independent))).item()
    assert value < 3.0 / math.sqrt(4000)  # |rho| of independent columns ~ 1/sqrt(n)


def test_constant_column_gives_zero_not_nan_and_finite_gradient():
    rng = np.random.default_rng(3)
    x = torch.tensor(np.c_[rng.normal(size=(100, 3)), np.full(100, 2.5)], requires_grad=True)
    corr = pearson_matrix(x)
    assert torch.isfinite(corr).all()
    assert torch.allclose(corr[3, :3], torch.zeros(3, dtype=corr.dtype))
    loss = offdiag_mean_abs(corr)
    loss.backward()
    assert torch.isfinite(x.grad).all()
    # expected: 3x3 block of the 3 random columns, zeros for the constant one, over 4*3 entries
    ref = pearson_matrix_numpy(x.detach().numpy())
    assert loss.item() == pytest.approx(_offdiag_numpy(ref), abs=1e-6)


@pytest.mark.parametrize("sampler", [corr._sample_host, corr._sample_device], ids=["host", "device"])
@pytest.mark.parametrize("shuffled", [False, True], ids=["ordered", "shuffled"])
@pytest.mark.parametrize("sample", [5, "sqrt", None])
def test_sampling_is_per_structure_without_replacement(sample, shuffled, sampler):
    counts = [30, 4, 100, 0, 17]
    segment = torch.repeat_interleave(torch.arange(5), torch.tensor(counts))
    if shuffled:  # rows need not be ordered by structure
        segment = segment[torch.randperm(segment.numel(), generator=torch.Generator().manual_seed(0))]
    index, mask = sampler(segment, 5, sample, torch.Generator().manual_seed(1))
    for s, n in enumerate(counts):
        chosen = index[s][mask[s]]
        expected = {5: min(5, n), "sqrt": math.isqrt(n), None: n}[sample]
        assert chosen.numel() == expected
        assert chosen.unique().numel() == chosen.numel()  # without replacement
        assert torch.all(segment[chosen] == s)  # only rows of this structure


@pytest.mark.parametrize("sampler", [corr._sample_host, corr._sample_device], ids=["host", "device"])
def test_sampling_is_uniform_and_reproducible(sampler):
    segment = torch.zeros(50, dtype=torch.long)
    a, _ = sampler(segment, 1, 10, torch.Generator().manual_seed(0))
    b, _ = sampler(segment, 1, 10, torch.Generator().manual_seed(0))
    c, _ = sampler(segment, 1, 10, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    generator = torch.Generator().manual_seed(2)
    hits = torch.zeros(50)
    for _ in range(400):
        index, _ = sampler(segment, 1, 10, generator)
        hits[index[0]] += 1
    # every row is drawn with probability 10/50: 80 expected hits each, binomial sd ~8
    assert hits.min() > 45 and hits.max() < 115


def test_correlation_loss_per_structure_matches_numpy():
    rng = np.random.default_rng(4)
    counts = [40, 25, 60]
    segment = torch.repeat_interleave(torch.arange(3), torch.tensor(counts))
    rows = rng.normal(size=(sum(counts), 6))
    rows[:, 1] += rows[:, 0]  # some correlation
    index, mask = sample_per_structure(segment, 3, None)
    groups = [slice(0, 2), torch.tensor([2, 4, 5])]
    loss, per = correlation_loss(torch.tensor(rows), index, mask, groups, eps=0.0)
    expected = np.zeros((3, 2))
    start = 0
    for s, n in enumerate(counts):
        block = rows[start : start + n]
        start += n
        expected[s, 0] = _offdiag_numpy(np.corrcoef(block[:, :2], rowvar=False))
        expected[s, 1] = _offdiag_numpy(np.corrcoef(block[:, [2, 4, 5]], rowvar=False))
    np.testing.assert_allclose(per.numpy(), expected, atol=1e-10)
    # sum over groups of the mean over structures
    assert loss.item() == pytest.approx(expected.mean(0).sum(), abs=1e-10)


def test_structures_with_fewer_than_two_rows_are_left_out():
    rows = torch.randn(12, 4, dtype=torch.float64)
    segment = torch.tensor([0] * 11 + [1])
    index, mask = sample_per_structure(segment, 2, None)
    loss, per = correlation_loss(rows, index, mask)
    assert per[1].item() == 0.0
    assert loss.item() == pytest.approx(per[0].item())


@pytest.mark.parametrize("bad", [1, 0, -3, "half", 2.5, True])
def test_bad_sample_size_is_refused(bad):
    with pytest.raises(ValueError, match="sample_edges"):
        validate_sample_size(bad)


@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_fused_loss_matches_autograd_reference(masked):
    """The hand-written backward of the fused node equals autograd through the plain formula."""
    from gnnff_stability.train.corr import offdiag_abs_pearson

    generator = torch.Generator().manual_seed(5)
    x = torch.randn(3, 40, 5, dtype=torch.float64, generator=generator)
    x[..., 1] += 0.8 * x[..., 0]
    x[1, :, 4] = 3.0  # a constant column in one structure
    mask = None
    if masked:
        mask = torch.ones(3, 40, dtype=torch.bool)
        mask[0, 25:] = False
        mask[2, 1:] = False  # a single row: value 0
    x.requires_grad_(True)
    weights = torch.tensor([0.3, -1.2, 0.7], dtype=torch.float64)
    fused = offdiag_abs_pearson(x, mask, 1e-8)
    (fused * weights).sum().backward()
    grad_fused = x.grad.clone()
    x.grad = None
    reference = offdiag_mean_abs(pearson_matrix(x, mask, 1e-8))
    (reference * weights).sum().backward()
    torch.testing.assert_close(fused, reference, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(grad_fused, x.grad, atol=1e-10, rtol=1e-8)
    if masked:
        assert fused[2].item() == 0.0
    # and against finite differences
    probe = x.detach()[:2, :12].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: offdiag_abs_pearson(t, None, 1e-8), (probe,))


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-5])
def test_correlation_does_not_depend_on_the_feature_scale(scale):
    """The variance floor is relative: messages of size 1e-5 (variance 1e-10, below the default eps
    1e-8) give numpy's correlations, as messages of size 1 do."""
    from gnnff_stability.train.corr import offdiag_abs_pearson

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6))
    x[:, 1] += 0.9 * x[:, 0]
    x[:, 5] = x[:, 2] - 0.5 * x[:, 3]
    reference = np.abs(np.corrcoef(x, rowvar=False))
    expected = (reference.sum() - np.trace(reference)) / 30
    for dtype in (torch.float64, torch.float32):
        value = offdiag_abs_pearson(torch.tensor(scale * x, dtype=dtype)[None])
        assert value.item() == pytest.approx(expected, rel=1e-5)
        matrix = pearson_matrix(torch.tensor(scale * x, dtype=dtype)).double().numpy()
        np.testing.assert_allclose(np.abs(matrix), reference, atol=1e-5)
