"""Fixtures of the stabiliser tests: Hf/O frames labelled by a known pair potential (helpers.pair_frames)."""

from __future__ import annotations

from pathlib import Path

import ase
import ase.io
import pytest
from helpers.pair_frames import random_frames


@pytest.fixture(scope="session")
def pair_frames() -> list[ase.Atoms]:
    """48 random labelled Hf/O cells (6-10 atoms)."""
    return random_frames(48, seed=0)


@pytest.fixture(scope="session")
def pair_splits(pair_frames, tmp_path_factory) -> dict[str, Path]:
    """train (32) / valid (8) / test (8) extended-XYZ files."""
    folder = tmp_path_factory.mktemp("pair_data")
    splits = {"train": pair_frames[:32], "valid": pair_frames[32:40], "test": pair_frames[40:]}
    paths = {}
    for name, frames in splits.items():
        paths[name] = folder / f"{name}.xyz"
        ase.io.write(paths[name], frames, format="extxyz")
    return paths
