"""The numerics of the training process (train.launch): thread counts and deterministic kernels."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gnnff_stability.train.launch import DETERMINISM_ENV, deterministic_algorithms, fix_numerics

_PROBE = (
    "import torch\n"
    "from gnnff_stability.train.launch import fix_numerics\n"
    "fix_numerics(3)\n"
    "print(torch.get_num_threads(), torch.get_num_interop_threads(), torch.are_deterministic_algorithms_enabled(),"
    " torch.is_deterministic_algorithms_warn_only_enabled())\n"
)


def test_fix_numerics_sets_threads_and_deterministic_kernels_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.stdout.split() == ["3", "1", "True", "True"]


@pytest.mark.parametrize("threads", [0, -1, True, 1.5])
def test_fix_numerics_refuses_a_bad_thread_count(threads):
    with pytest.raises(ValueError, match=f"threads must be an integer >= 1, got {threads!r}"):
        fix_numerics(threads)


def test_deterministic_algorithms_is_on_inside_the_block_only():
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    with deterministic_algorithms():
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert all(key in os.environ for key in DETERMINISM_ENV)
    assert (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) == before
