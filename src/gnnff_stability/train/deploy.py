"""Deploying a trained model: ``nequip-package`` and ``nequip-compile``, the one path for each.

The workflow's ``train_model`` rule packages the best (or last) checkpoint; ``compile_model`` compiles a
package with AOTInductor for the embedded engine (``--target ase``) or for the LAMMPS pair styles of an
HPC build (``pair_nequip`` / ``pair_allegro``). Both write under a temporary name and rename at the end,
so an interrupted job leaves nothing that looks finished.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gnnff_stability.proc import check_streamed, cli, cli_env

__all__ = ["COMPILE_TARGETS", "compile_model", "package_checkpoint"]

logger = logging.getLogger(__name__)

#: ``nequip-compile --target`` values: the ASE calculator (embedded engine) and the two pair styles.
COMPILE_TARGETS = ("ase", "pair_nequip", "pair_allegro")
_PACKAGE_SUFFIX = ".nequip.zip"
_COMPILED_SUFFIX = ".nequip.pt2"


def _partial(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name[: -len(suffix)]}.partial{suffix}")


def package_checkpoint(ckpt: str | Path, out: str | Path, threads: int = 1) -> Path:
    """``nequip-package build ckpt out``; ``out`` must end in ``.nequip.zip``."""
    out = Path(out)
    if not out.name.endswith(_PACKAGE_SUFFIX):
        raise ValueError(f"package path must end in {_PACKAGE_SUFFIX}, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(out, _PACKAGE_SUFFIX)
    check_streamed([cli("nequip-package"), "build", str(Path(ckpt).resolve()), str(partial.resolve())],
                   cli_env(threads), "nequip-package")
    partial.replace(out)
    return out


def compile_model(
    package: str | Path,
    output: str | Path,
    target: str = "ase",
    device: str = "cpu",
    threads: int = 1,
) -> Path:
    """Compile a packaged model with ``nequip-compile --mode aotinductor``.

    Parameters
    ----------
    package
        ``model.nequip.zip``.
    output
        Output file; must end in ``.nequip.pt2``.
    target
        One of :data:`COMPILE_TARGETS`: ``"ase"`` (the embedded engine,
        ``NequIPCalculator.from_compiled_model``), ``"pair_nequip"`` or ``"pair_allegro"``.
    device
        ``"cpu"`` or ``"cuda"`` (the compiled file runs only on that device kind).
    threads
        CPU threads for the compilation (AOTInductor on CPU takes 1-2 minutes for a small model).
    """
    if target not in COMPILE_TARGETS:
        raise ValueError(f"compile target must be one of {COMPILE_TARGETS}, got {target!r}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"compile device must be 'cpu' or 'cuda', got {device!r}")
    output = Path(output)
    if not output.name.endswith(_COMPILED_SUFFIX):
        raise ValueError(f"compiled model path must end in {_COMPILED_SUFFIX}, got {output}")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(output, _COMPILED_SUFFIX)
    logger.info("compiling %s -> %s (target %s, device %s)", package, output, target, device)
    check_streamed(
        [cli("nequip-compile"), str(Path(package).resolve()), str(partial.resolve()),
         "--mode", "aotinductor", "--device", device, "--target", target],
        cli_env(threads), "nequip-compile",
    )
    if not partial.exists():
        raise RuntimeError(f"nequip-compile wrote no {partial}")
    partial.replace(output)
    return output
