"""Feature-correlation penalty of Zeng et al. (2025), "Improving the Stability of GNN Force Field Models
by Reducing Feature Correlation".

For the features ``X_l`` of layer ``l`` (rows: edges or atoms of one structure, columns: feature
channels) the penalty is the mean off-diagonal absolute Pearson correlation

.. math::

    L_l = \\frac{1}{d(d-1)} \\sum_{k \\neq j} |\\mathrm{Corr}_l[k, j] - I[k, j]|
        = \\frac{1}{d(d-1)} \\sum_{k \\neq j} |\\rho(X_l[:, k], X_l[:, j])|,

which is 0 for decorrelated channels and 1 when every channel is a linear function of every other.
The loss of a batch sums ``L_l`` over the selected layers (and over the irreps groups of a layer, see
:mod:`gnnff_stability.train.features`), each ``L_l`` being the mean over the structures of the batch.

Rows are sampled **per structure** before the correlation is taken (the paper samples 1024 edges per
structure; ``"sqrt"`` takes ``floor(sqrt(n))`` of a structure's ``n`` rows), and each structure gets
its own correlation matrix. The sample is drawn without replacement (see
:func:`sample_per_structure`), only the sampled rows are gathered, and the correlations of all
structures are one batched matrix product: the cost is ``O(n_structures * k * d^2)`` per layer and
nothing scales with the number of edges except drawing the sample. On a GPU no value is read back to
the host (shapes depend only on the number of rows).

Conventions: ``S`` structures, ``n`` rows in total, ``K`` sampled rows per structure (padded), ``d``
feature columns. The Pearson correlation of a constant column is defined as 0 (``eps`` times the mean
column variance of the matrix is added to every variance, see :func:`variance_floor`), so constant
channels never give NaN, and the floor scales with the features: messages of size 1e-4 (variance 1e-8,
common in a last interaction layer) are correlated exactly like messages of size 1.
"""

from __future__ import annotations

import logging
import math
from typing import Literal, Union

import numpy as np
import torch

__all__ = [
    "DEFAULT_EPS",
    "SampleSize",
    "correlation_loss",
    "offdiag_abs_pearson",
    "offdiag_mean_abs",
    "pearson_matrix",
    "sample_per_structure",
    "sampled_correlation_loss",
    "tap_gather",
    "validate_sample_size",
    "variance_floor",
]

logger = logging.getLogger(__name__)

SampleSize = Union[int, Literal["sqrt"], None]
"""Rows sampled per structure: an int ``k`` (``min(k, n_s)`` rows), ``"sqrt"`` (``floor(sqrt(n_s))``),
or ``None`` (all rows, evaluation only: it synchronises once to find the largest structure)."""

DEFAULT_EPS = 1e-8
"""Relative variance floor: ``eps`` times the mean column variance is added to each column variance
before dividing by the standard deviation (dimensionless; see :func:`variance_floor`)."""


def variance_floor(var: torch.Tensor, eps: float) -> torch.Tensor:
    """``eps · mean(var) + sqrt(tiny)`` over the last axis: what is added to each column variance.

    Relative to the columns' own scale, so it changes a correlation by a factor ``1 - O(eps)`` at any
    feature magnitude; an absolute floor would shrink every correlation of columns whose variance is
    comparable to it (``var / (var + eps)`` on the diagonal). ``sqrt(tiny)`` (the square root of the
    dtype's smallest normal number: 1.1e-19 in float32) keeps an all-constant matrix at 0 instead of
    0/0, with ``floor^(-3/2)`` (in the gradient) still finite. Treated as a constant in the backward
    pass (its derivative is of relative order ``eps``).

    Parameters
    ----------
    var
        ``[..., d]`` column variances.
    eps
        Relative floor (>= 0).

    Returns
    -------
    torch.Tensor
        ``[..., 1]``.
    """
    return eps * var.mean(-1, keepdim=True).detach() + math.sqrt(torch.finfo(var.dtype).tiny)


def validate_sample_size(sample: SampleSize) -> SampleSize:
    """Check a per-structure sample size and return it (``int``, ``"sqrt"`` or ``None``).

    Raises
    ------
    ValueError
        If ``sample`` is not an integer >= 2, ``"sqrt"`` or ``None``.
    """
    if sample is None or sample == "sqrt":
        return sample
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 2:
        raise ValueError(
            f"sample_edges must be an integer >= 2, 'sqrt' or None (all rows); got {sample!r}"
        )
    return int(sample)


def sample_per_structure(
    segment: torch.Tensor,
    num_structures: int,
    sample: SampleSize,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw rows at random, without replacement, separately for every structure.

    Parameters
    ----------
    segment
        ``[n]`` long tensor: the structure (graph) index of every row (edge or atom), in
        ``[0, num_structures)``. Rows need not be ordered by structure (nequip batches are).
    num_structures
        Number of structures ``S`` in the batch (structures without rows get an empty sample).
    sample
        Rows per structure: int ``k`` takes ``min(k, n_s)`` rows of a structure with ``n_s`` rows,
        ``"sqrt"`` takes ``floor(sqrt(n_s))``, ``None`` takes all rows.
    generator
        Random generator on ``segment``'s device (``None`` uses torch's default generator, which the
        training module never does: it owns a seeded generator).

    Returns
    -------
    index
        ``[S, K]`` long tensor of row indices into the ``n`` rows; padded slots hold a valid index
        whose row must be ignored.
    mask
        ``[S, K]`` bool tensor, True for the sampled rows.

    Notes
    -----
    On the CPU the per-structure counts are read on the host and each structure draws
    ``randperm(n_s)[:k]`` (``S`` small permutations, no sort of all rows when the rows are ordered
    by structure). On other devices nothing is read back: one sort of ``segment + uniform`` keys
    orders the rows by structure at random, the first ``k_s`` of each structure are taken, and the
    padded width ``K`` is a bound known from ``n`` alone (``min(k, n)`` or ``isqrt(n)``).
    """
    sample = validate_sample_size(sample)
    if segment.dim() != 1:
        raise ValueError(f"segment must be 1-D [n_rows], got shape {tuple(segment.shape)}")
    if segment.device.type == "cpu":
        return _sample_host(segment, num_structures, sample, generator)
    return _sample_device(segment, num_structures, sample, generator)


def _per_structure_size(counts: torch.Tensor, sample: SampleSize) -> torch.Tensor:
    if sample is None:
        return counts
    if sample == "sqrt":
        return torch.floor(torch.sqrt(counts.to(torch.float64))).to(torch.long)
    return counts.clamp(max=sample)


def _sample_host(segment, num_structures, sample, generator):
    n = segment.numel()
    counts = torch.bincount(segment, minlength=num_structures)
    sizes = _per_structure_size(counts, sample).tolist()
    counts_list = counts.tolist()
    ordered = n < 2 or bool((segment[1:] >= segment[:-1]).all())
    width = max(max(sizes, default=0), 1)
    pieces, start = [], 0
    for count, size in zip(counts_list, sizes):
        if size == count:
            picked = torch.arange(start, start + count)
        else:
            picked = torch.randperm(count, generator=generator)[:size] + start
        pieces.append(picked)
        start += count
    if all(size == width for size in sizes):  # the usual case: every structure fills the sample
        index = torch.cat(pieces).view(num_structures, width)
        mask = torch.ones((num_structures, width), dtype=torch.bool)
    else:
        index = torch.zeros((num_structures, width), dtype=torch.long)
        mask = torch.zeros((num_structures, width), dtype=torch.bool)
        for s, (picked, size) in enumerate(zip(pieces, sizes)):
            index[s, :size] = picked
            mask[s, :size] = True
    if not ordered:
        index = torch.argsort(segment, stable=True)[index]
    return index, mask


def _sample_device(segment, num_structures, sample, generator):
    device = segment.device
    n = segment.numel()
    counts = torch.zeros(num_structures, dtype=torch.long, device=device)
    counts.index_add_(0, segment, torch.ones_like(segment))
    sizes = _per_structure_size(counts, sample)
    if sample is None:
        width = int(counts.max().item()) if n else 0  # one sync, evaluation only
    elif sample == "sqrt":
        width = math.isqrt(n)
    else:
        width = min(sample, n)
    width = max(width, 1)
    # random order within each structure: sort random keys offset by the structure index
    keys = segment.to(torch.float64) + torch.rand(
        n, generator=generator, device=device, dtype=torch.float64
    )
    order = torch.argsort(keys)
    start = torch.cumsum(counts, 0) - counts  # first sorted position of each structure
    slot = torch.arange(width, device=device)
    position = (start[:, None] + slot[None, :]).clamp(max=max(n - 1, 0))
    mask = slot[None, :] < sizes[:, None]
    index = order[position] if n else torch.zeros_like(position)
    return index, mask


class _Gram(torch.autograd.Function):
    """``x^T x`` over the last two dims, with a one-product backward ``x (g + g^T)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.transpose(-1, -2) @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return x @ (grad + grad.transpose(-1, -2))


def pearson_matrix(
    x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = DEFAULT_EPS
) -> torch.Tensor:
    """Pearson correlation matrices of the columns of ``x`` (batched), ignoring masked-out rows.

    The columns are centred (masked mean), one (batched) matrix product gives the scatter matrix
    ``Xc^T Xc``, and rows and columns of that ``d x d`` matrix are divided by the standard
    deviations (``sqrt(var + floor)``): two passes over the ``[..., K, d]`` sample and one product.

    Parameters
    ----------
    x
        ``[..., K, d]`` features, rows are samples.
    mask
        ``[..., K]`` bool (or 0/1) tensor of the rows to use; ``None`` uses all rows.
    eps
        Relative variance floor (:func:`variance_floor`): a constant column has correlation 0 with
        every column (and 0 on the diagonal) instead of NaN.

    Returns
    -------
    torch.Tensor
        ``[..., d, d]`` correlation matrices (population normalisation; the diagonal is
        ``var / (var + eps · mean(var))``, i.e. 1 to within ``eps · mean(var) / var``).
    """
    if x.dim() < 2:
        raise ValueError(f"x must be [..., rows, columns], got shape {tuple(x.shape)}")
    if mask is None:
        count = torch.full(x.shape[:-2] + (1, 1), float(x.shape[-2]), dtype=x.dtype, device=x.device)
        centred = x - x.mean(-2, keepdim=True)
    else:
        w = mask.to(x.dtype)[..., None]  # [..., K, 1]
        count = w.sum(-2, keepdim=True).clamp(min=1.0)  # [..., 1, 1]
        mean = (x * w).sum(-2, keepdim=True) / count
        centred = (x - mean) * w
    scatter = _Gram.apply(centred) / count  # [..., d, d] covariance
    var = torch.diagonal(scatter, dim1=-2, dim2=-1)  # [..., d]
    inv_std = torch.rsqrt(var + variance_floor(var, eps))
    return scatter * inv_std[..., :, None] * inv_std[..., None, :]


class _OffdiagAbsPearson(torch.autograd.Function):
    """Per-structure mean off-diagonal ``|pearson|`` with a hand-written backward.

    Forward: centre the (masked) columns, ``cov = Xc^T Xc / n`` (one batched product),
    ``s = (diag(cov) + floor)^(-1/2)`` (:func:`variance_floor`), ``C = cov * s s^T``, value ``= sum_{k!=j} |C_kj| / (d(d-1))``.
    Backward (first order): with ``G = sign(C)`` off the diagonal (times the incoming gradient and
    ``1 / (d(d-1))``), ``u = 2 (G * cov) s`` and ``H = G * s s^T - diag(u * s^3 / 2)``, the gradient
    is ``dX = 2 Xc H / n`` (the centring projection drops out because ``Xc`` has zero column means,
    and masked-out rows of ``Xc`` are zero). One product each way and a dozen small ops, as one
    autograd node, instead of the ~100 nodes autograd would record.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, mask: torch.Tensor | None, eps: float) -> torch.Tensor:
        if mask is None:
            centred = x - x.mean(-2, keepdim=True)
            inv_n = torch.full((1, 1, 1), 1.0 / x.shape[-2], dtype=x.dtype, device=x.device)
        else:
            w = mask.to(x.dtype).unsqueeze(-1)  # [S, K, 1]
            inv_n = 1.0 / w.sum(-2, keepdim=True).clamp(min=1.0)  # [S, 1, 1]
            centred = (x - (x * w).sum(-2, keepdim=True) * inv_n) * w
        cov = torch.matmul(centred.transpose(-1, -2), centred) * inv_n  # [S, d, d]
        var = torch.diagonal(cov, dim1=-2, dim2=-1)  # [S, d]
        s = torch.rsqrt(var + variance_floor(var, eps))
        corr = cov * (s.unsqueeze(-1) * s.unsqueeze(-2))
        d = x.shape[-1]
        magnitude = corr.abs()
        value = (magnitude.sum((-1, -2)) - torch.diagonal(magnitude, dim1=-2, dim2=-1).sum(-1)) / (d * (d - 1))
        ctx.save_for_backward(centred, cov, s, corr, inv_n)
        return value

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        centred, cov, s, corr, inv_n = ctx.saved_tensors
        d = corr.shape[-1]
        g = torch.sign(corr)
        g.diagonal(dim1=-2, dim2=-1).zero_()
        g.mul_((grad / (d * (d - 1))).reshape(-1, 1, 1))
        u = 2.0 * torch.matmul(g * cov, s.unsqueeze(-1)).squeeze(-1)  # [S, d]
        h = g.mul_(s.unsqueeze(-1) * s.unsqueeze(-2))
        h.diagonal(dim1=-2, dim2=-1).sub_(0.5 * u * s * s * s)
        return torch.matmul(centred, h).mul_(2.0 * inv_n), None, None


def offdiag_abs_pearson(
    x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = DEFAULT_EPS
) -> torch.Tensor:
    """``offdiag_mean_abs(pearson_matrix(x, mask, eps))`` as one fused autograd node.

    Parameters
    ----------
    x
        ``[S, K, d]`` samples (``d >= 2``).
    mask
        ``[S, K]`` bool rows to use, or ``None`` for all.
    eps
        See :func:`pearson_matrix`.

    Returns
    -------
    torch.Tensor
        ``[S]`` mean off-diagonal ``|pearson|`` per structure (0 for a structure with < 2 rows).
    """
    if x.dim() != 3:
        raise ValueError(f"x must be [structures, rows, columns], got shape {tuple(x.shape)}")
    if x.shape[-1] < 2:
        raise ValueError(f"a correlation loss needs at least 2 feature columns, got {x.shape[-1]}")
    return _OffdiagAbsPearson.apply(x, mask, float(eps))


def offdiag_mean_abs(corr: torch.Tensor) -> torch.Tensor:
    """Mean absolute off-diagonal entry, ``sum_{k != j} |C[k, j]| / (d (d - 1))``.

    Parameters
    ----------
    corr
        ``[..., d, d]`` correlation matrices, ``d >= 2``.

    Returns
    -------
    torch.Tensor
        ``[...]`` values in ``[0, 1]``.
    """
    d = corr.shape[-1]
    if d < 2:
        raise ValueError(f"a correlation loss needs at least 2 feature columns, got {d}")
    total = corr.abs().sum((-1, -2)) - torch.diagonal(corr, dim1=-2, dim2=-1).abs().sum(-1)
    return total / (d * (d - 1))


class _TapGather(torch.autograd.Function):
    """Pass ``x`` through unchanged and also return its rows ``index``.

    The backward adds the sample's gradient into the pass-through gradient with one out-of-place
    ``index_add`` (no zero-filled full-size gradient and no second accumulation), and passes the
    gradient straight through when only the full tensor was used (e.g. the force pass).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor, start: int, stop: int):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(index)
        ctx.shape, ctx.span = x.shape, (start, stop)
        return x.view_as(x), x[:, start:stop].index_select(0, index)

    @staticmethod
    def backward(ctx, grad_full, grad_sample):
        if grad_sample is None:
            return grad_full, None, None, None
        (index,) = ctx.saved_tensors
        start, stop = ctx.span
        if grad_full is None:
            grad = grad_sample.new_zeros(ctx.shape)
        else:
            grad = grad_full.clone()
        grad[:, start:stop].index_add_(0, index, grad_sample)
        return grad, None, None, None


def tap_gather(
    x: torch.Tensor, index: torch.Tensor, span: slice | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, x[index, span])`` for a forward hook: the first output replaces ``x`` downstream.

    Parameters
    ----------
    x
        ``[n, D]`` layer output.
    index
        ``[m]`` long row indices (a flattened sample of :func:`sample_per_structure`).
    span
        Contiguous columns to gather (``None``: all ``D``).
    """
    start, stop, _ = (span or slice(None)).indices(x.shape[1])
    return _TapGather.apply(x, index, start, stop)


def correlation_loss(
    rows: torch.Tensor,
    index: torch.Tensor,
    mask: torch.Tensor,
    columns: list[slice | torch.Tensor] | None = None,
    eps: float = DEFAULT_EPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlation loss of one layer's features on a per-structure sample.

    Parameters
    ----------
    rows
        ``[n, D]`` features of all rows (edges or atoms) of the batch.
    index, mask
        ``[S, K]`` sample from :func:`sample_per_structure`.
    columns
        Column groups of ``rows`` (slices or long index tensors). Each group gets its own
        correlation matrix and the group losses are **summed** (this is how the ``0e+1o`` selection
        is read); ``None`` is one group with all ``D`` columns.
    eps
        See :func:`pearson_matrix`.

    Returns
    -------
    loss
        Scalar: the sum over groups of the mean over structures (with at least 2 sampled rows) of
        the mean off-diagonal ``|pearson|``.
    per_structure
        ``[S, n_groups]`` mean off-diagonal ``|pearson|`` of every structure and group (structures
        with fewer than 2 sampled rows hold 0).
    """
    if rows.dim() != 2:
        raise ValueError(f"rows must be [n_rows, n_columns], got shape {tuple(rows.shape)}")
    gathered = rows.index_select(0, index.reshape(-1))
    return sampled_correlation_loss(gathered, mask, columns, eps)


def sampled_correlation_loss(
    gathered: torch.Tensor,
    mask: torch.Tensor,
    columns: list[slice | torch.Tensor] | None = None,
    eps: float = DEFAULT_EPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`correlation_loss` on rows already gathered: ``gathered`` is ``[S * K, D]`` (or
    ``[S, K, D]``) in the order of the ``[S, K]`` ``mask``."""
    n_structures, width = mask.shape
    gathered = gathered.reshape(n_structures, width, gathered.shape[-1])
    full = slice(None)
    groups = [full] if columns is None else columns
    if mask.device.type == "cpu" and bool(mask.all()):
        # every structure filled its sample (checked where it is free): no masking, all valid
        use_mask, n_valid = None, float(n_structures)
    else:
        use_mask = mask
        n_valid = (mask.sum(-1) >= 2).sum().clamp(min=1).to(gathered.dtype)
    per_structure = []
    for group in groups:
        if isinstance(group, slice):
            start, stop, _ = group.indices(gathered.shape[-1])
            x = gathered if (start, stop) == (0, gathered.shape[-1]) else gathered[..., start:stop]
        else:
            x = gathered.index_select(-1, group.to(gathered.device))
        per_structure.append(offdiag_abs_pearson(x, use_mask, eps))
    stacked = per_structure[0].unsqueeze(-1) if len(per_structure) == 1 else torch.stack(per_structure, -1)
    loss = stacked.sum() / n_valid
    return loss, stacked
