"""SAM: one Lightning step on quadratic losses against the closed form; settings; composition with corr."""

from __future__ import annotations

import warnings

import lightning
import numpy as np
import pytest
from helpers.pair_frames import to_batch
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
    assert trainer.callback_metrics["sam/grad_norm"].item() == pytest.approx(np.linalg.norm(g), rel=1e-12)


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
    out, norm = sam_perturbation([a, frozen], 0.5, False, 0.01, 1e-12)
    assert len(out) == 1 and out[0][0] is a and norm.item() == pytest.approx(5.0)
    torch.testing.assert_close(out[0][1], torch.tensor([0.3, 0.4]))
    assert sam_perturbation([frozen], 0.5, False, 0.01, 1e-12) == ([], None)


class LinearQuadratic(SAMMixin, lightning.LightningModule):
    """A linear layer (weight 1x2, bias 1) under L = 1/2 (x - x*)^T A (x - x*), x = (w11, w12, b)."""

    def __init__(self, A, x_star, x0, lr, sam):
        super().__init__(sam=sam)
        self.register_buffer("A", A)
        self.register_buffer("x_star", x_star)
        self.layer = torch.nn.Linear(2, 1, dtype=torch.float64)
        with torch.no_grad():
            self.layer.weight.copy_(x0[:2].reshape(1, 2))
            self.layer.bias.copy_(x0[2:])
        self.lr = lr

    def training_step(self, batch, batch_idx):
        d = torch.cat([self.layer.weight.reshape(-1), self.layer.bias]) - self.x_star
        return 0.5 * d @ self.A @ d

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def train_dataloader(self):
        return torch.utils.data.DataLoader([0.0], batch_size=1)


@pytest.mark.parametrize("eta", [0.0, 0.01])
def test_adaptive_sam_leaves_biases_unscaled(eta):
    """ASAM's T = |w| + eta multiplies the weights' ascent only; a bias moves as in plain SAM (T = 1)."""
    lr, rho = 0.1, 0.5
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    A = q @ np.diag([0.5, 2.0, 5.0]) @ q.T
    x_star, x0 = rng.normal(size=3), np.array([0.3, -2.0, 1.5])
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    module = LinearQuadratic(t(A), t(x_star), t(x0), lr, {"rho": rho, "adaptive": True, "eta": eta})
    trainer = lightning.Trainer(max_steps=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module)
    x1 = torch.cat([module.layer.weight.reshape(-1), module.layer.bias]).detach().numpy()
    g = A @ (x0 - x_star)
    T = np.array([abs(x0[0]) + eta, abs(x0[1]) + eta, 1.0])  # the bias (last) is not scaled
    e = rho * T**2 * g / np.linalg.norm(T * g)
    np.testing.assert_allclose(x1, x0 - lr * A @ (x0 + e - x_star), rtol=0, atol=1e-12)
    # the bias's ascent is plain SAM's direction over the same global norm; scaling it too differs
    assert e[2] == pytest.approx(rho * g[2] / np.linalg.norm(T * g), rel=1e-12)
    T_all = np.abs(x0) + eta
    e_all = rho * T_all**2 * g / np.linalg.norm(T_all * g)
    assert np.abs(x1 - (x0 - lr * A @ (x0 + e_all - x_star))).max() > 1e-4
    assert trainer.callback_metrics["sam/grad_norm"].item() == pytest.approx(np.linalg.norm(T * g), rel=1e-12)


def test_is_bias():
    from gnnff_stability.train.sam import is_bias

    assert is_bias("layer.bias") and is_bias("mlp.0.bias") and is_bias("bias")
    assert not is_bias("layer.weight") and not is_bias("bias_net.weight") and not is_bias("a")


def test_sam_defaults_come_from_the_schema():
    """Allegro-Legato's main radius (Ibayashi et al. 2023: rho 0.005); eps can be set from a config."""
    from gnnff_stability.config import ConfigError, validate_config

    def sam_block(sam):
        config = validate_config({"grid": {"model": ["m"], "layers": {"m": [1]}, "method": ["s"]},
                                  "models": {"m": {"family": "nequip"}}, "methods": {"s": {"sam": sam}}})
        return config["methods"]["s"]["sam"]

    assert sam_block({}) == {"rho": 0.005, "adaptive": False, "eta": 0.01, "eps": 1e-12}
    assert sam_block({"eps": 1e-8, "rho": 0.05}) == {"rho": 0.05, "adaptive": False, "eta": 0.01, "eps": 1e-8}
    with pytest.raises(ConfigError, match="sam.eps"):
        sam_block({"eps": 0})
    # the module fills the same defaults when it is given a partial block
    assert validate_sam({}) == sam_block({})


def test_validate_sam():
    assert validate_sam(None) is None
    assert validate_sam({"rho": 0.05}) == {"rho": 0.05, "adaptive": False, "eta": 0.01, "eps": 1e-12}
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


# --------------------------------------------------------------------------------------------------
# composition with the correlation loss, on a real (tiny) NequIP model
# --------------------------------------------------------------------------------------------------

def _corr():
    """The run table's correlation-loss settings of a NequIP model (schema defaults for the rest)."""
    from gnnff_stability.config import validate_config
    from gnnff_stability.grid import expand_grid

    config = validate_config({
        "grid": {"model": ["m"], "layers": {"m": [1]}, "method": ["c"]},
        "models": {"m": {"family": "nequip"}},
        "methods": {"c": {"corr": {"features": {"nequip": "edge_0e+1o"}, "scheduler": "fixed", "c_max": 0.3,
                                   "sample_edges": 32}}},
    })
    return expand_grid(config).iloc[0]["corr_settings"]


def _corr_module(cls, lr, **extra):
    from nequip.utils.global_state import set_global_state

    set_global_state()
    return cls(
        family="nequip", corr=_corr(), corr_seed=0,
        model=dict(_target_="nequip.model.NequIPGNNModel", seed=0, model_dtype="float64", type_names=["Hf", "O"],
                   r_max=4.0, num_layers=2, l_max=1, num_features=4, radial_mlp_width=8, avg_num_neighbors=10.0,
                   per_type_energy_shifts={"Hf": -3.0, "O": -1.0}, per_type_energy_scales=1.0),
        loss=dict(_target_="nequip.train.EnergyForceLoss", per_atom_energy=True, coeffs={"total_energy": 1.0, "forces": 1.0}),
        val_metrics=dict(_target_="nequip.train.EnergyForceMetrics", coeffs={"forces_mae": 1.0}),
        optimizer=dict(_target_="torch.optim.SGD", lr=lr),
        num_datasets={"train": 1, "val": 1, "test": 1},
        **extra,
    )


def test_corr_sam_step_includes_the_penalty_at_both_passes(pair_frames):
    from gnnff_stability.train.sam import CorrSAMLightningModule
    from gnnff_stability.train.module import CorrLightningModule

    lr, rho = 0.05, 0.05
    batch = to_batch(pair_frames[:4], 4.0)

    # by hand, with the plain correlation module: the same sample of edges at w and at w + e
    ref = _corr_module(CorrLightningModule, lr)
    ref.on_fit_start()
    params = list(ref.model.parameters())
    w0 = [p.detach().clone() for p in params]

    def gradient(with_penalty: bool):
        ref._generator = None  # recreated from corr_seed: the same edge sample every time
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coeff, ref.corr_coeff = ref.corr_coeff, (ref.corr_coeff if with_penalty else 0.0)
            total = ref.training_step(batch.copy(), 0)
            ref.corr_coeff = coeff
        return total.detach(), torch.autograd.grad(total, params)

    loss_w, g1 = gradient(True)
    weighted_w, _ = gradient(False)  # nequip's loss alone at w
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in g1))
    with torch.no_grad():
        for p, g in zip(params, g1):
            p.add_(rho * g / norm)
    _, g2 = gradient(True)
    _, g2_no_penalty = gradient(False)
    expected = [w - lr * g for w, g in zip(w0, g2)]
    without = [w - lr * g for w, g in zip(w0, g2_no_penalty)]
    ref.on_fit_end()

    module = _corr_module(CorrSAMLightningModule, lr, sam={"rho": rho})
    loader = torch.utils.data.DataLoader([batch], batch_size=None, collate_fn=lambda b: b)
    trainer = lightning.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_dataloaders=loader)
    got = [p.detach() for p in module.model.parameters()]
    gap = max((a - b).abs().max().item() for a, b in zip(expected, without))
    assert gap > 1e-6  # the penalty's gradient at w + e moves the step measurably
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    # the epoch logs count the first pass only: nequip's loss and the penalty at w
    metrics = trainer.callback_metrics
    corr_w = (loss_w - weighted_w) / module.corr_coeff_effective
    assert metrics["train_loss_step/weighted_sum"].item() == pytest.approx(weighted_w.item(), rel=1e-10)
    assert metrics["train_loss_epoch/weighted_sum"].item() == pytest.approx(weighted_w.item(), rel=1e-10)
    assert metrics["train_loss_epoch/corr"].item() == pytest.approx(corr_w.item(), rel=1e-6)
    assert module._corr_epoch_steps == 1
