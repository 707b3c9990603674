"""Bases, dense layers and initialisation of GemNet-T (Gasteiger, Becker, Günnemann, NeurIPS 2021).

- :class:`PolynomialEnvelope`: the smooth cutoff ``u(x)`` of DimeNet / GemNet, ``x = d / cutoff``.
- :class:`SphericalBesselBasis`: the radial basis ``u(x) sqrt(2 / c^3) sin(n pi x) / x`` (``n = 1 ..
  num_radial``, trainable frequencies), evaluated per edge.
- :func:`circular_basis`: the zonal spherical harmonics ``Y_l^0`` of the angle between two edges
  (``l = 0 .. num_spherical - 1``), evaluated per triplet.
- :class:`Dense` (a bias-free linear map with GemNet's scaled SiLU), :class:`ResidualLayer` and
  :func:`he_orthogonal_init`, the initialisation of every weight matrix.

Units: distances in Å; the bases are dimensionless except for the ``sqrt(2 / c^3)`` normalisation of
the radial basis (Å^-3/2, as in the paper). Tensors are in the model dtype.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "Dense",
    "PolynomialEnvelope",
    "ResidualLayer",
    "ScaledSiLU",
    "SphericalBesselBasis",
    "circular_basis",
    "he_orthogonal_init",
]


def he_orthogonal_init(weight: torch.Tensor) -> torch.Tensor:
    """He-orthogonal initialisation, in place: a random (semi-)orthogonal matrix, standardised to zero
    mean and unit variance per output unit, then scaled by ``1 / sqrt(fan_in)``.

    Parameters
    ----------
    weight
        A linear weight ``[out, in]`` (``fan_in = in``) or a bilinear weight ``[a, b, out]``
        (``fan_in = a * b``). Uses the global torch RNG (seeded by nequip's ``model_builder``).
    """
    torch.nn.init.orthogonal_(weight)
    if weight.dim() == 3:
        fan_in, axes = weight.shape[0] * weight.shape[1], [0, 1]
    else:
        fan_in, axes = weight.shape[1], [1]
    with torch.no_grad():
        var, mean = torch.var_mean(weight, dim=axes, unbiased=True, keepdim=True)
        weight.copy_((weight - mean) / (var + 1e-6).sqrt() / math.sqrt(fan_in))
    return weight


class ScaledSiLU(torch.nn.Module):
    """``silu(x) / 0.6``, which keeps unit-variance inputs near unit variance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(x) * (1.0 / 0.6)


class Dense(torch.nn.Module):
    """Linear map without bias, He-orthogonal initialised, optionally followed by :class:`ScaledSiLU`.

    Parameters
    ----------
    in_features, out_features
        Widths.
    activation
        Apply the scaled SiLU after the linear map.
    """

    def __init__(self, in_features: int, out_features: int, activation: bool = False) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features, bias=False)
        he_orthogonal_init(self.linear.weight)
        self.activation = ScaledSiLU() if activation else torch.nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x))


class ResidualLayer(torch.nn.Module):
    """``(x + f(x)) / sqrt(2)`` with ``f`` two activated :class:`Dense` layers of width ``units``."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.dense_mlp = torch.nn.Sequential(Dense(units, units, True), Dense(units, units, True))
        self.inv_sqrt_2 = 1.0 / math.sqrt(2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.dense_mlp(x)) * self.inv_sqrt_2


class PolynomialEnvelope(torch.nn.Module):
    """Smooth cutoff ``u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` for ``x < 1``,
    0 beyond; ``u``, ``u'`` and ``u''`` vanish at ``x = 1``.

    Parameters
    ----------
    exponent
        ``p`` (GemNet uses 5).
    """

    def __init__(self, exponent: int = 5) -> None:
        super().__init__()
        if exponent < 1:
            raise ValueError(f"envelope exponent must be >= 1, got {exponent}")
        p = float(exponent)
        self.p = p
        self.a = -(p + 1.0) * (p + 2.0) / 2.0
        self.b = p * (p + 2.0)
        self.c = -p * (p + 1.0) / 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: scaled distance ``d / cutoff``, any shape; returns the same shape."""
        xp = x.pow(self.p)
        u = 1.0 + xp * (self.a + x * (self.b + self.c * x))
        return torch.where(x < 1.0, u, torch.zeros_like(x))


class SphericalBesselBasis(torch.nn.Module):
    """Enveloped zeroth-order spherical Bessel basis of the edge length (GemNet's radial basis).

    ``rbf_n(d) = u(d / c) * sqrt(2 / c^3) * sin(f_n d / c) / (d / c)``, ``f_n`` initialised at ``n pi``
    and trainable.

    Parameters
    ----------
    num_radial
        Number of basis functions (GemNet: 6).
    cutoff
        ``c``, Å.
    envelope_exponent
        ``p`` of :class:`PolynomialEnvelope` (GemNet: 5).
    """

    def __init__(self, num_radial: int, cutoff: float, envelope_exponent: int = 5) -> None:
        super().__init__()
        self.inv_cutoff = 1.0 / float(cutoff)
        self.norm_const = math.sqrt(2.0 / float(cutoff) ** 3)
        self.envelope = PolynomialEnvelope(envelope_exponent)
        self.frequencies = torch.nn.Parameter(
            math.pi * torch.arange(1, num_radial + 1, dtype=torch.get_default_dtype())
        )

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """``d``: edge lengths ``[n_edges]``, Å. Returns ``[n_edges, num_radial]``."""
        x = (d * self.inv_cutoff).unsqueeze(-1)
        return self.envelope(x) * self.norm_const * torch.sin(self.frequencies * x) / x


def circular_basis(cos_angle: torch.Tensor, num_spherical: int) -> torch.Tensor:
    """Zonal spherical harmonics ``Y_l^0 = sqrt((2l+1) / 4 pi) P_l(cos a)``, ``l = 0 .. num_spherical-1``.

    Parameters
    ----------
    cos_angle
        Cosine of the angle between the two edges of a triplet, any shape.
    num_spherical
        Number of degrees (GemNet: 7).

    Returns
    -------
    torch.Tensor
        ``[*cos_angle.shape, num_spherical]``, Legendre polynomials from Bonnet's recurrence.
    """
    p_prev = torch.ones_like(cos_angle)
    out = [p_prev]
    if num_spherical > 1:
        p_curr = cos_angle
        out.append(p_curr)
        for l in range(1, num_spherical - 1):
            p_next = ((2 * l + 1) * cos_angle * p_curr - l * p_prev) / (l + 1)
            out.append(p_next)
            p_prev, p_curr = p_curr, p_next
    norms = [math.sqrt((2 * l + 1) / (4.0 * math.pi)) for l in range(num_spherical)]
    return torch.stack([p * n for p, n in zip(out, norms)], dim=-1)
