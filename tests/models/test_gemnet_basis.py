"""GemNet-T bases and initialisation against closed forms (gnnff_stability.models.gemnet_basis)."""

from __future__ import annotations

import numpy as np
import torch


def test_radial_basis_is_an_orthonormal_bessel_basis_times_the_envelope():
    """Divided by the envelope, the basis functions are orthonormal under the weight d^2 on [0, c]
    (sqrt(2/c^3) j0 normalisation); the envelope u(x) = 1 - 21x^5 + 35x^6 - 15x^7 has u(0) = 1 and
    value, slope and curvature 0 at the cutoff."""
    from scipy.integrate import trapezoid

    from gnnff_stability.models.gemnet_basis import PolynomialEnvelope, SphericalBesselBasis

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        basis, cutoff = SphericalBesselBasis(6, 5.0, envelope_exponent=5), 5.0
        d = torch.linspace(1e-4, 0.999 * cutoff, 200001)  # u rounds to 0 closer to the cutoff
        u = PolynomialEnvelope(5)(d / cutoff)
        x = (d / cutoff).numpy()
        np.testing.assert_allclose(u.numpy(), 1 - 21 * x**5 + 35 * x**6 - 15 * x**7, atol=1e-12)
        f = (basis(d).detach() / u.unsqueeze(1)).numpy()
        gram = trapezoid(f[:, :, None] * f[:, None, :] * (d.numpy() ** 2)[:, None, None], d.numpy(), axis=0)
        np.testing.assert_allclose(gram, np.eye(6), atol=1e-4)
    finally:
        torch.set_default_dtype(before)
    x1 = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    env = PolynomialEnvelope(5)
    (g,) = torch.autograd.grad(env(x1 - 1e-12), x1, create_graph=True)
    (g2,) = torch.autograd.grad(g, x1)
    assert float(env(torch.tensor([0.0]))) == 1.0
    assert abs(float(g.detach())) < 1e-9 and abs(float(g2)) < 1e-8
    assert float(env(torch.tensor([1.3]))) == 0.0


def test_circular_basis_is_the_zonal_spherical_harmonics():
    from scipy.special import eval_legendre

    from gnnff_stability.models.gemnet_basis import circular_basis

    cos = torch.linspace(-1, 1, 41, dtype=torch.float64)
    expected = np.stack([np.sqrt((2 * l + 1) / (4 * np.pi)) * eval_legendre(l, cos.numpy())
                         for l in range(7)], axis=-1)
    np.testing.assert_allclose(circular_basis(cos, 7).numpy(), expected, atol=1e-12)


def test_he_orthogonal_init_standardises_every_output_unit():
    from gnnff_stability.models.gemnet_basis import he_orthogonal_init

    torch.manual_seed(0)
    w = he_orthogonal_init(torch.empty(64, 128, dtype=torch.float64))
    np.testing.assert_allclose(w.mean(1).numpy(), 0, atol=1e-12)
    np.testing.assert_allclose(w.var(1).numpy(), 1 / 128, rtol=1e-3)  # var + 1e-6 in the standardisation
    w3 = he_orthogonal_init(torch.empty(7, 6, 16, dtype=torch.float64))
    np.testing.assert_allclose(w3.var(dim=(0, 1)).numpy(), 1 / 42, rtol=1e-3)
