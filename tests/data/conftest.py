"""Shared fixtures of the data-stage tests (structures, COMB labels, SAMD23 reader, reference MD, SiC)."""

from __future__ import annotations

import pytest
from data.sic_material import sic_config

from gnnff_stability.data.hfo2 import monoclinic_hfo2
from gnnff_stability.settings import MaterialSettings

@pytest.fixture(scope="session")
def sic():
    """The SiC material (species Si, C; zincblende a 4.36 Å; Tersoff SiC.tersoff)."""
    return MaterialSettings.from_config(sic_config()["material"])


@pytest.fixture(scope="session")
def hfo2():
    """HfO2, the default material."""
    from partial_settings import partial  # noqa: PLC0415

    return partial(MaterialSettings)


@pytest.fixture(scope="session")
def mono96():
    """The 96-atom monoclinic HfO2 cell (2x2x2), Hf first."""
    return monoclinic_hfo2((2, 2, 2))


@pytest.fixture(scope="session")
def mono96_label(mono96):
    """Converged COMB single point of the ideal monoclinic cell (about 1 s)."""
    from gnnff_stability.data.comb import comb_single_point  # noqa: PLC0415

    return comb_single_point(mono96, label_qeq_tol=1e-6, over_coordination=False)
