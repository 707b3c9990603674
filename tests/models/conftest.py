"""Fixtures of the GemNet-T tests: small float64 models and a toy model trained by nequip-train."""

from __future__ import annotations

import hashlib
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch
from gemnet_builders import TOY_GEMNET, build_small

import gnnff_stability.models
from gnnff_stability.settings import MaterialSettings
from partial_settings import partial
from toy_models import build_toy_package


@pytest.fixture(scope="session")
def hfo2_material() -> MaterialSettings:
    """The ``material`` block of a minimal validated campaign: HfO2, the schema's default."""
    return partial(MaterialSettings)


@pytest.fixture(scope="module")
def small_model():
    return build_small()


@pytest.fixture(scope="module")
def capped_model():
    """Small model whose 12-neighbour limit is active at r_max 4 Å (fluorite has ~20 neighbours)."""
    return build_small(max_neighbors=12)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def toy_gemnet(request, tmp_path_factory) -> Path:
    """``model.nequip.zip`` of a GemNet-T trained by nequip-train and packaged by nequip-package."""
    if not any(ep.value == "gnnff_stability.models" for ep in entry_points(group="nequip.extension")):
        pytest.fail("gnnff_stability.models is not registered as a nequip extension, so nequip-package "
                    "cannot package GemNet-T: reinstall the project (pip install -e .)")
    try:
        cache_dir = Path(request.config.cache.mkdir("gnnff_gemnet_toy_models"))
    except AttributeError:
        cache_dir = tmp_path_factory.mktemp("toy_models")
    # the package carries this project's model code: a cached one is reused only for the same code
    sources = sorted(Path(gnnff_stability.models.__file__).parent.glob("*.py"))
    cache_dir = cache_dir / hashlib.sha1(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")  # the suite shares 2 cores
    try:
        return build_toy_package(cache_dir, **TOY_GEMNET)
    finally:
        mp.undo()
