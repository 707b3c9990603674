"""Fixtures of the workflow tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_helpers import copy_workflow


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch copy of the workflow (Snakefile, workflow/, config/, scripts/, envs/) to run in."""
    return copy_workflow(tmp_path)
