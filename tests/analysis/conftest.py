"""Fixtures of the analysis tests; the builders live in analysis_builders.py."""

from __future__ import annotations

import pytest
from analysis_builders import fluorite


@pytest.fixture
def crystal():
    """96-atom cubic fluorite HfO2: positions [96, 3] Å, types [96], cell [3, 3] Å."""
    return fluorite()
