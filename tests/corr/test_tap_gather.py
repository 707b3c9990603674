"""tap_gather: the layer output passes through unchanged and its sampled rows come out too; gradients
of both add up exactly as for plain indexing (autograd of ``x`` and ``x[index, span]``)."""

from __future__ import annotations

import pytest
import torch

from gnnff_stability.train.corr import tap_gather


def _plain(x, index, span):
    return x, x[:, span].index_select(0, index)


@pytest.mark.parametrize("span", [None, slice(2, 5), slice(0, 3)], ids=["all", "middle", "first"])
@pytest.mark.parametrize("use", ["both", "sample_only", "full_only"])
def test_values_and_gradients_match_plain_indexing(span, use):
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(9, 6, dtype=torch.float64, generator=gen)
    index = torch.tensor([4, 0, 7, 4, 2])  # a repeated row accumulates twice
    w_full = torch.randn(9, 6, dtype=torch.float64, generator=gen)
    cols = (span or slice(None)).indices(6)
    w_sample = torch.randn(5, cols[1] - cols[0], dtype=torch.float64, generator=gen)

    grads, outs = [], []
    for fn in (lambda x: tap_gather(x, index, span), lambda x: _plain(x, index, span or slice(None))):
        x = x0.clone().requires_grad_(True)
        full, sample = fn(x)
        outs.append((full.detach(), sample.detach()))
        loss = {"both": (full * w_full).sum() + (sample * w_sample).sum(),
                "sample_only": (sample * w_sample).sum(),
                "full_only": (full * w_full).sum()}[use]
        loss.backward()
        grads.append(x.grad)
    (full_t, sample_t), (_, sample_p) = outs
    assert torch.equal(full_t, x0) and torch.equal(sample_t, sample_p)
    assert sample_t.shape == (5, cols[1] - cols[0])
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-14)


def test_gradcheck():
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([6, 1, 1, 3])
    assert torch.autograd.gradcheck(lambda t: tap_gather(t, index, slice(1, 3)), (x,))
