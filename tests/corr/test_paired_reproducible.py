"""Paired design and bitwise reproducibility of real trainings (nequip-train through train_model).

A tiny NequIP (2 layers, l_max 1, 4 features) trains for 2 epochs on the 16 COMB-labelled training frames
(batch 4: 4 steps an epoch) with the recording training module of ``helpers.recording_module``, which
writes the weights the fit starts from and the frames of every batch. Each training takes about 30 s on
2 idle cores; the module trains five (the baseline twice on 1 and on 2 threads, the correlation arm once).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import ase.io
import pandas as pd
import pytest
import torch
from helpers.recording_module import BATCHES, INITIAL_WEIGHTS, TARGET

from gnnff_stability.config import validate_config
from gnnff_stability.grid import expand_grid, training_runs
from gnnff_stability.settings import MaterialSettings, ModelPreset, TrainingSettings
from gnnff_stability.train.run import WALL_TIME_FIELDS, train_model

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parents[1]
SEED = 0
MODEL = {"family": "nequip", "r_max": 4.0, "l_max": 1, "num_features": 4,
         "overrides": {"radial_mlp_width": 8, "training_module._target_": TARGET}}
#: The correlation arm: the penalty at a fixed coefficient, so it acts from the first step.
METHODS = {
    "baseline": {},
    "corr_fixed": {"corr": {"features": {"nequip": "edge_0e+1o"}, "scheduler": "fixed", "c_min": 0.1,
                            "c_max": 0.1, "t_cycle": 2, "sample_edges": 64}},
}
TRAINING = {"batch_size": 4, "lr": 0.01, "loss_coeffs": {"forces": 1.0, "total_energy": 1.0}, "device": "cpu",
            "max_epochs": 2}


def _train(method: str, threads: int, splits: dict[str, Path], folder: Path) -> dict:
    config = validate_config({
        "grid": {"model": ["tiny"], "layers": {"tiny": [2]}, "method": [method], "seed": [SEED]},
        "models": {"tiny": MODEL},
        "methods": {method: METHODS[method]},
        "training": TRAINING,
    })
    run = training_runs(expand_grid(config)).iloc[0].to_dict()
    outputs = {"model": folder / "model.nequip.zip", "metrics": folder / "metrics.json",
               "epochs": folder / "metrics_epoch.csv"}
    with pytest.MonkeyPatch.context() as mp:  # the nequip-train process imports the recording module
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p))
        return train_model(run, ModelPreset.from_config("tiny", config["models"]["tiny"]),
                           TrainingSettings.from_config(config["training"]),
                           MaterialSettings.from_config(config["material"]),
                           {k: str(splits[k]) for k in ("train", "valid", "test")}, folder / "run", outputs,
                           threads=threads)


@pytest.fixture(scope="module")
def trained(hfo2_splits, tmp_path_factory):
    """``trained(method, threads, repeat)``: the folder of that training (trained once, on first use)."""
    done: dict[tuple, Path] = {}

    def get(method: str, threads: int, repeat: int) -> Path:
        key = (method, threads, repeat)
        if key not in done:
            folder = tmp_path_factory.mktemp(f"{method}_t{threads}_r{repeat}")
            _train(method, threads, hfo2_splits, folder)
            done[key] = folder
        return done[key]

    return get


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's state dict or of a saved state dict, by key."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    state = blob.get("state_dict", blob)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    different = [k for k in a if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]
    assert not different, f"tensors that differ: {different}"


def _frame_indices(batches: list, train_file: Path) -> list[list[list[int]]]:
    """Per epoch, the training-file indices of each batch's frames (recorded energies → frames)."""
    energies = [atoms.get_potential_energy() for atoms in ase.io.read(train_file, ":")]
    assert len(set(energies)) == len(energies), "the frames' energies must identify them"
    index = {e: i for i, e in enumerate(energies)}
    epochs: dict[int, list[list[int]]] = {}
    for epoch, batch in batches:
        epochs.setdefault(epoch, []).append([index[min(index, key=lambda e: abs(e - x))] for x in batch])
    return [epochs[e] for e in sorted(epochs)]


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_gives_bitwise_identical_weights_and_metrics(trained, threads):
    """Two trainings with the same seed, data, settings and thread count: the same initial and final weights
    (model and EMA) bit for bit, the same batches, and metrics.json equal but for the wall times."""
    a, b = trained("baseline", threads, 0), trained("baseline", threads, 1)
    _assert_bitwise_equal(_tensors(a / "run" / INITIAL_WEIGHTS), _tensors(b / "run" / INITIAL_WEIGHTS))
    _assert_bitwise_equal(_tensors(a / "run" / "last.ckpt"), _tensors(b / "run" / "last.ckpt"))
    assert json.loads((a / "run" / BATCHES).read_text()) == json.loads((b / "run" / BATCHES).read_text())

    metrics_a, metrics_b = (json.loads((x / "metrics.json").read_text()) for x in (a, b))
    assert set(WALL_TIME_FIELDS) <= set(metrics_a)
    for field in WALL_TIME_FIELDS:
        metrics_a.pop(field), metrics_b.pop(field)
    assert metrics_a == metrics_b
    epochs_a, epochs_b = (pd.read_csv(x / "metrics_epoch.csv") for x in (a, b))
    timing = [c for c in epochs_a.columns if c.startswith("time/")]
    assert timing  # the only columns left out
    pd.testing.assert_frame_equal(epochs_a.drop(columns=timing), epochs_b.drop(columns=timing), check_exact=True)


def test_arms_share_initial_weights_and_batch_order(trained, hfo2_splits):
    """The baseline and the correlation arm with the same training seed start from the same weights and see
    the same frames in the same batches, in nequip's order: a permutation drawn by the data loader from a
    generator seeded with the training seed. The penalty acts (the final weights differ)."""
    base, corr = trained("baseline", 2, 0), trained("corr_fixed", 2, 0)
    _assert_bitwise_equal(_tensors(base / "run" / INITIAL_WEIGHTS), _tensors(corr / "run" / INITIAL_WEIGHTS))
    batches = [json.loads((x / "run" / BATCHES).read_text()) for x in (base, corr)]
    assert batches[0] == batches[1]

    order = _frame_indices(batches[0], hfo2_splits["train"])
    assert len(order) == TRAINING["max_epochs"]
    # torch's DataLoader(shuffle=True, generator=g): each epoch draws the iterator's base seed from g,
    # then RandomSampler's torch.randperm(n, generator=g)
    generator = torch.Generator().manual_seed(SEED)
    for epoch in order:
        torch.empty((), dtype=torch.int64).random_(generator=generator)
        expected = torch.randperm(16, generator=generator).tolist()
        assert [i for batch in epoch for i in batch] == expected
        assert [len(batch) for batch in epoch] == [TRAINING["batch_size"]] * 4
    assert order[0] != order[1]

    final = [_tensors(x / "run" / "last.ckpt") for x in (base, corr)]
    assert any(not torch.equal(final[0][k], final[1][k]) for k in final[0] if k.startswith("model."))
    coeff = pd.read_csv(corr / "metrics_epoch.csv")["loss_coeff/corr"]
    assert coeff.tolist() == [0.1, 0.1]
