"""One hooked tensor of a model (:class:`LayerTap`): where it comes from and which of its columns the
correlation loss uses. :mod:`.features` finds the taps of a feature selection in a built model."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

__all__ = ["LayerTap", "group_sizes", "irreps_columns", "as_group"]


@dataclasses.dataclass
class LayerTap:
    """One hooked tensor: where it comes from and which columns are used.

    Attributes
    ----------
    layer
        Interaction-layer index ``l`` (0-based).
    path
        Dotted module path (relative to the model given to :func:`build_taps`).
    module
        The hooked module.
    rows
        ``"edge"`` or ``"node"``: what a row of the captured tensor is.
    groups
        Column groups (slices or long index tensors); each gets its own correlation matrix.
    group_names
        Labels of the groups (e.g. ``["0e", "1o"]``).
    n_columns
        Total columns of the captured tensor.
    extract
        Maps the module output to the ``[rows, n_columns]`` tensor.
    span
        Contiguous columns covering every group (what the hook gathers).
    span_groups
        ``groups`` relative to ``span``.
    """

    layer: int
    path: str
    module: torch.nn.Module
    rows: str
    groups: list[slice | torch.Tensor]
    group_names: list[str]
    n_columns: int
    extract: Callable[[object], torch.Tensor]
    span: slice = dataclasses.field(init=False)
    span_groups: list[slice | torch.Tensor] = dataclasses.field(init=False)

    def __post_init__(self):
        bounds = [g.indices(self.n_columns)[:2] for g in self.groups if isinstance(g, slice)]
        if len(bounds) == len(self.groups):
            start, stop = min(b[0] for b in bounds), max(b[1] for b in bounds)
            self.span = slice(start, stop)
            self.span_groups = [slice(a - start, b - start) for a, b in bounds]
        else:  # index groups: gather every column
            self.span = slice(0, self.n_columns)
            self.span_groups = list(self.groups)


def irreps_columns(irreps, wanted: str | None) -> list[int]:
    """Column indices of the irreps chunks equal to ``wanted`` (all columns if ``None``)."""
    columns: list[int] = []
    start = 0
    for mul, ir in irreps:
        width = mul * ir.dim
        if wanted is None or str(ir) == wanted:
            columns.extend(range(start, start + width))
        start += width
    return columns


def as_group(columns: list[int]) -> slice | torch.Tensor:
    """A slice when the columns are one contiguous range (no copy), else a long index tensor."""
    if columns == list(range(columns[0], columns[-1] + 1)):
        return slice(columns[0], columns[-1] + 1)
    return torch.tensor(columns, dtype=torch.long)


def group_sizes(taps: Sequence[LayerTap]) -> list[list[int]]:
    """Number of columns of every group of every tap (for logging and tests)."""
    sizes = []
    for tap in taps:
        row = []
        for group in tap.groups:
            if isinstance(group, slice):
                start, stop, _ = group.indices(tap.n_columns)
                row.append(stop - start)
            else:
                row.append(int(group.numel()))
        sizes.append(row)
    return sizes
