"""Fixtures of the correlation-loss tests: tiny HfO2 data labelled by the real COMB potential."""

from __future__ import annotations

from pathlib import Path

import ase
import ase.io
import pytest
from helpers.comb_frames import make_frames

from gnnff_stability.settings import MaterialSettings
from partial_settings import partial


@pytest.fixture(scope="session")
def hfo2_material() -> MaterialSettings:
    """The ``material`` block of a minimal validated campaign: HfO2, the schema's default."""
    return partial(MaterialSettings)


@pytest.fixture(scope="session")
def hfo2_frames(tmp_path_factory) -> list[ase.Atoms]:
    """24 COMB-labelled 12-atom HfO2 frames (a few seconds)."""
    return make_frames(24, seed=0, workdir=tmp_path_factory.mktemp("comb"))


@pytest.fixture(scope="session")
def hfo2_splits(hfo2_frames, tmp_path_factory) -> dict[str, Path]:
    """train (16) / valid (4) / test (4) extended-XYZ files."""
    folder = tmp_path_factory.mktemp("data")
    splits = {"train": hfo2_frames[:16], "valid": hfo2_frames[16:20], "test": hfo2_frames[20:]}
    paths = {}
    for name, frames in splits.items():
        paths[name] = folder / f"{name}.xyz"
        ase.io.write(paths[name], frames, format="extxyz")
    return paths
