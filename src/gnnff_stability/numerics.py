"""Reproducible numerics of a process: fixed thread counts and torch's deterministic kernels.

Used by the training process (:mod:`gnnff_stability.train.launch`) and the embedded MD engine
(:mod:`gnnff_stability.md`); a module of its own so that neither stage imports the other.

What makes two trainings with the same seed, data and settings give the same weights bit for bit:

- the same intra-op thread count (``torch.set_num_threads``, together with ``OMP_NUM_THREADS`` /
  ``MKL_NUM_THREADS`` in the environment) and one inter-op thread (``torch.set_num_interop_threads``);
  torch's ``set_num_threads`` also switches MKL's dynamic thread adjustment off, so a loaded machine
  cannot change the number of threads, and with it the order of a floating-point reduction;
- ``torch.use_deterministic_algorithms(True)``: the kernels with a nondeterministic implementation
  (CUDA scatter and index additions above all) use a deterministic one; with ``warn_only`` an operation
  that has none warns in the training log instead of stopping the training;
- ``CUBLAS_WORKSPACE_CONFIG`` (:data:`DETERMINISM_ENV`, set by the caller in the child's environment),
  which cuBLAS needs for reproducible results on CUDA.

Results are reproducible for one machine type and thread count: another thread count sums in another
order and gives other (equally valid) weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["DETERMINISM_ENV", "deterministic_algorithms", "fix_numerics"]

logger = logging.getLogger(__name__)

#: Environment of the training process for reproducible numerics (cuBLAS's fixed workspace; ignored on CPU).
DETERMINISM_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


def fix_numerics(threads: int, deterministic: bool = True) -> None:
    """Fix the thread counts of this process and, with ``deterministic``, switch torch to deterministic kernels.

    Parameters
    ----------
    threads
        Intra-op threads (``torch.set_num_threads``), >= 1. Inter-op threads are set to one.
    deterministic
        ``torch.use_deterministic_algorithms(True, warn_only=True)``; ``False`` leaves torch's default.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    torch.set_num_threads(int(threads))
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError as exc:  # parallel work already started in this process
            logger.warning("inter-op threads stay at %d: %s", torch.get_num_interop_threads(), exc)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


@contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """torch's deterministic kernels inside the block (``warn_only``), the previous mode after it.

    For work inside one process (the embedded MD engine): :data:`DETERMINISM_ENV` is also put in this
    process's environment where unset, so a CUDA context created inside the block reads it.
    """
    for key, value in DETERMINISM_ENV.items():
        os.environ.setdefault(key, value)
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
