"""The training process: nequip-train's own entry point, run with fixed threads and deterministic kernels.

:func:`gnnff_stability.train.run.train_model` starts ``python -m gnnff_stability.train.launch --threads N
-cp ... -cn ... <overrides>``. :func:`main` fixes the process's numerics before anything is built
(:func:`fix_numerics`) and then hands the remaining arguments to ``nequip.scripts.train.main``, the
function behind the ``nequip-train`` console script, unchanged.

Why here and not in the training module: the data statistics that initialise the model are computed
before nequip instantiates the training module, and torch's inter-op thread count can only be set
before the first parallel work of the process.

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

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

__all__ = ["DETERMINISM_ENV", "deterministic_algorithms", "fix_numerics", "main"]

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


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``nequip-train`` with ``argv`` (default: this process's arguments) after :func:`fix_numerics`.

    ``--threads N`` (required) is read here; every other argument goes to nequip-train as given.
    """
    parser = argparse.ArgumentParser(prog="python -m gnnff_stability.train.launch", add_help=False,
                                     allow_abbrev=False)
    parser.add_argument("--threads", type=int, required=True)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    fix_numerics(args.threads)
    from nequip.scripts.train import main as nequip_train  # noqa: PLC0415 (after the thread settings)

    sys.argv = ["nequip-train", *rest]
    nequip_train()


if __name__ == "__main__":
    main()
