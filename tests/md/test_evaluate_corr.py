"""The Corr value that evaluate_model reports (Tables 2, 4, A1, A3) is the last layer's, on a real package.

The toy model of ``conftest.TOY_MODEL`` (a NequIP model trained by ``nequip-train`` and packaged by
``nequip-package``; cached) has two interaction layers, indices 0 and 1.
"""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from toy_models import toy_dataset

from gnnff_stability.train.evaluate import evaluate_model

N_LAYERS = 2  # conftest.TOY_MODEL["num_layers"]


@pytest.mark.parametrize("selection", ["edge_0e+1o", "node"])
def test_reported_corr_is_the_highest_layers(toy_model, tmp_path, selection):
    data = tmp_path / "test.xyz"
    ase.io.write(data, toy_dataset(3, seed=7), format="extxyz")
    got = evaluate_model(toy_model, data, "nequip", selection, batch_size=2)

    per_layer = got["corr_value_per_layer"]
    assert got["corr_layers"] == list(range(N_LAYERS))
    assert got["corr_layers"][-1] == max(got["corr_layers"]) == N_LAYERS - 1
    assert len(per_layer) == N_LAYERS and np.isfinite(per_layer).all()
    assert all(0.0 <= v <= 1.0 for v in per_layer)  # mean |pearson|
    # the layers' values differ on this model, so reporting another layer's value is visible
    assert per_layer[0] != pytest.approx(per_layer[-1], rel=1e-3)
    assert got["corr_value"] == per_layer[-1]
    assert (got["corr_selection"], got["n_frames"]) == (selection, 3)
