"""SAM: one Lightning step on quadratic losses against the closed form; settings; composition with corr."""

from __future__ import annotations

import warnings

import lightning
import numpy as np
import pytest
import torch

from gnnff_stability.train.sam import SAMMixin, sam_perturbation, validate_sam


class Quadratic(SAMMixin, lightning.LightningModule):
    """L(a, b) = 1/2 (x - x*)^T A (x - x*) with x = concat(a, b): two parameters, one global norm."""

    def __init__(self, A, x_star, a0, b0, lr, sam):
        super().__init__(sam=sam)
        self.register_buffer("A", A)
        self.register_buffer("x_star", x_star)
        self.a = torch.nn.Parameter(a0.clone())
        self.b = torch.nn.Parameter(b0.clone())
        self.lr = lr
        self.calls = 0

    def training_step(self, batch, batch_idx):
        self.calls += 1
        d = torch.cat([self.a, self.b]) - self.x_star
        loss = 0.5 * d @ self.A @ d
        self.log("quad_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def train_dataloader(self):
        return torch.utils.data.DataLoader([0.0], batch_size=1)


def _problem():
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    A = q @ np.diag([0.5, 1.0, 2.0, 4.0, 9.0]) @ q.T  # known curvature (eigenvalues)
    x_star = rng.normal(size=5)
    x0 = rng.normal(size=5) + np.array([0.0, 0.0, 0.0, 0.0, 0.0])
    return A, x_star, x0


def _one_step(sam, lr=0.1):
    A, x_star, x0 = _problem()
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    module = Quadratic(t(A), t(x_star), t(x0[:2]), t(x0[2:]), lr, sam)
    trainer = lightning.Trainer(
        max_steps=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module)
    x1 = torch.cat([module.a, module.b]).detach().numpy()
    return A, x_star, x0, x1, module, trainer


@pytest.mark.parametrize("rho", [0.05, 0.5])
def test_sam_step_matches_closed_form(rho):
    lr = 0.1
    A, x_star, x0, x1, module, trainer = _one_step({"rho": rho}, lr)
    g = A @ (x0 - x_star)
    e = rho * g / np.linalg.norm(g)
    expected = x0 - lr * A @ (x0 + e - x_star)
    np.testing.assert_allclose(x1, expected, rtol=0, atol=1e-12)
    # not the plain step (the test can tell SAM from SGD)
    assert np.abs(x1 - (x0 - lr * g)).max() > 1e-3
    assert module.calls == 2
    # the logged loss is the one at w, not at w + e
    d = x0 - x_star
    assert trainer.callback_metrics["quad_loss"].item() == pytest.approx(0.5 * d @ A @ d, rel=1e-12)


@pytest.mark.parametrize("eta", [0.0, 0.01])
def test_adaptive_sam_step_matches_closed_form(eta):
    lr, rho = 0.1, 0.5
    A, x_star, x0, x1, module, _ = _one_step({"rho": rho, "adaptive": True, "eta": eta}, lr)
    g = A @ (x0 - x_star)
    T = np.abs(x0) + eta
    e = rho * T**2 * g / np.linalg.norm(T * g)
    expected = x0 - lr * A @ (x0 + e - x_star)
    np.testing.assert_allclose(x1, expected, rtol=0, atol=1e-12)
    plain = x0 - lr * A @ (x0 + rho * g / np.linalg.norm(g) - x_star)
    assert np.abs(x1 - plain).max() > 1e-4


def test_no_sam_is_the_plain_step():
    lr = 0.1
    A, x_star, x0, x1, module, _ = _one_step(None, lr)
    np.testing.assert_allclose(x1, x0 - lr * A @ (x0 - x_star), rtol=0, atol=1e-12)
    assert module.calls == 1


def test_perturbation_skips_parameters_without_gradient():
    a = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    frozen = torch.nn.Parameter(torch.tensor([1.0]), requires_grad=False)
    a.grad = torch.tensor([3.0, 4.0])
    out = sam_perturbation([a, frozen], rho=0.5)
    assert len(out) == 1 and out[0][0] is a
    torch.testing.assert_close(out[0][1], torch.tensor([0.3, 0.4]))
    assert sam_perturbation([frozen], rho=0.5) == []


def test_validate_sam():
    assert validate_sam(None) is None
    assert validate_sam({}) == {"rho": 0.05, "adaptive": False, "eta": 0.01, "eps": 1e-12}
    assert validate_sam({"rho": 1, "adaptive": True})["rho"] == 1.0
    for bad, word in [({"rho": 0}, "rho"), ({"rho": -1}, "rho"), ({"radius": 1}, "radius"),
                      ({"adaptive": "yes"}, "adaptive"), ({"eta": -0.1}, "eta"), ({"rho": "big"}, "rho"),
                      ([0.05], "mapping")]:
        with pytest.raises(ValueError, match=word):
            validate_sam(bad)


def test_gradient_accumulation_is_refused():
    A, x_star, x0 = _problem()
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    module = Quadratic(t(A), t(x_star), t(x0[:2]), t(x0[2:]), 0.1, {"rho": 0.05})
    trainer = lightning.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, accumulate_grad_batches=2)
    with warnings.catch_warnings(), pytest.raises(ValueError, match="accumulate_grad_batches"):
        warnings.simplefilter("ignore")
        trainer.fit(module)
