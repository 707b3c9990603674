"""The training process: nequip-train's own entry point, run with fixed threads and deterministic kernels.

:func:`gnnff_stability.train.run.train_model` starts ``python -m gnnff_stability.train.launch --threads N
-cp ... -cn ... <overrides>``. :func:`main` fixes the process's numerics before anything is built
(:func:`fix_numerics`) and then hands the remaining arguments to ``nequip.scripts.train.main``, the
function behind the ``nequip-train`` console script, unchanged.

Why here and not in the training module: the data statistics that initialise the model are computed
before nequip instantiates the training module, and torch's inter-op thread count can only be set
before the first parallel work of the process.

What makes two trainings with the same seed, data and settings give the same weights bit for bit is
said in :mod:`gnnff_stability.numerics`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gnnff_stability.numerics import DETERMINISM_ENV, deterministic_algorithms, fix_numerics

__all__ = ["DETERMINISM_ENV", "deterministic_algorithms", "fix_numerics", "main"]


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
