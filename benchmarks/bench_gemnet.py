"""GemNet-T cost, side by side with NequIP and Allegro: force calls and the correlation-loss overhead.

1. Force-call time (energy + forces by autograd, eval mode, model call only: the neighbour list is
   built once beforehand) on the 96-atom monoclinic HfO2 cell (2x2x2 P2_1/c, rattled by 0.05 Å), of
   GemNet-T at the size of ``config/gemnet.yaml`` and at the paper's Table A7 size
   (``config/paper.yaml``: 1 and 4 blocks), next to NequIP and Allegro at their paper sizes (Tables
   A5, A6) and at the embedded campaign's sizes (``config/config.yaml``). Every model is the one
   ``train_model`` would train (:func:`bench_corr_overhead.model_spec`). The models run in
   interleaved rounds (one call of each per round); the median is reported with its ratio to NequIP
   at the paper size and at the embedded size.
2. The correlation-loss overhead of a GemNet-T training step (``bench_corr_overhead.bench``: the
   training module with and without the penalty, same weights and batches, ABBA blocks; paper: +1%).
3. The baseline training step of GemNet-T, NequIP and Allegro at the embedded campaign's sizes
   (interleaved rounds), for the cost of adding GemNet-T to the embedded campaign.

Weights are freshly initialised (timings do not depend on them). ``--smoke`` times only the
embedded sizes, one step per block (a check that it runs, in seconds). Usage::

    python benchmarks/bench_gemnet.py [--threads 2] [--repeats 5] [--device cpu|cuda]
        [--skip-force-calls] [--skip-corr] [--skip-training] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

# benchmarks/ is on sys.path
from bench_corr_overhead import SMOKE, TYPES, apply_smoke, batches, bench, build, model_spec, run_block, synthetic_frames

from gnnff_stability.data.hfo2 import monoclinic_hfo2

#: rows of part 1: label -> (family, config of bench_corr_overhead.CONFIGS, layers; None: the config's largest)
NEQUIP_PAPER, NEQUIP_DEMO = "NequIP paper (Table A5)", "NequIP embedded"
ROWS = {
    NEQUIP_DEMO: ("nequip", "embedded", None),
    "Allegro embedded": ("allegro", "embedded", None),
    NEQUIP_PAPER: ("nequip", "paper", None),
    "Allegro paper (Table A6)": ("allegro", "paper", None),
    "GemNet-T (config/gemnet.yaml)": ("gemnet", "gemnet", None),
    "GemNet-T Table A7, 1 block": ("gemnet", "paper", 1),
    "GemNet-T Table A7, 4 blocks": ("gemnet", "paper", None),
}
SMOKE_ROWS = (NEQUIP_DEMO, "Allegro embedded", "GemNet-T (config/gemnet.yaml)")
#: part 2's sizes: name -> (config, layers)
CORR_SIZES = {"embedded": ("gemnet", None), "paper-1block": ("paper", 1), "paper": ("paper", None)}


def spec(family: str, config: str, layers: int | None, dtype: str) -> dict:
    """:func:`bench_corr_overhead.model_spec`, with ``layers`` interaction layers (blocks) if given."""
    out = model_spec(family, config, dtype)
    if layers is not None:
        key = "num_blocks" if family == "gemnet" else "num_layers"
        out = dict(out, layers=layers, model=dict(out["model"], **{key: layers}))
    return out


def build_model(model: dict, device: str):
    from hydra.utils import instantiate

    return instantiate(dict(model), _recursive_=False).to(device).eval()


def cell_graph(r_max: float, device: str):
    from nequip.data import AtomicDataDict, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    atoms = monoclinic_hfo2((2, 2, 2))
    atoms.positions += np.random.default_rng(0).normal(0, 0.05, atoms.positions.shape)
    data = from_ase(atoms)
    data = ChemicalSpeciesToAtomTypeMapper(TYPES, {t: t for t in TYPES})(data)
    data = NeighborListTransform(r_max=r_max)(data)
    return AtomicDataDict.to_(data, device), len(atoms)


def force_calls(args) -> None:
    models, graphs, times = {}, {}, {}
    rows = {k: v for k, v in ROWS.items() if not args.smoke or k in SMOKE_ROWS}
    for label, (family, config, layers) in rows.items():
        s = spec(family, config, layers, args.dtype)
        models[label] = build_model(s["model"], args.device)
        graphs[label], n_atoms = cell_graph(s["r_max"], args.device)
        times[label] = []
        for _ in range(2):  # warm-up
            models[label](graphs[label].copy())
    for _ in range(args.repeats):
        for label in rows:
            if args.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = models[label](graphs[label].copy())
            out["forces"].sum().item()
            times[label].append(time.perf_counter() - t0)
    demo = statistics.median(times[NEQUIP_DEMO])
    paper = statistics.median(times[NEQUIP_PAPER]) if NEQUIP_PAPER in times else float("nan")
    print(f"\n[1] force call on {n_atoms}-atom monoclinic HfO2, device {args.device}, "
          f"threads {torch.get_num_threads()}, {args.dtype}, median of {args.repeats} interleaved rounds")
    print(f"    {'model':44s} {'edges':>6s} {'params':>8s} {'ms/call':>9s} {'range':>17s} "
          f"{'/NequIP paper':>13s} {'/NequIP emb.':>12s}")
    for label in rows:
        t = times[label]
        n_params = sum(p.numel() for p in models[label].parameters())
        print(f"    {label:44s} {graphs[label]['edge_index'].shape[1]:6d} {n_params:8d} "
              f"{1e3 * statistics.median(t):9.1f} {1e3 * min(t):7.1f}-{1e3 * max(t):<8.1f} "
              f"{statistics.median(t) / paper:13.3f} {statistics.median(t) / demo:12.2f}")


def corr_overhead(args) -> None:
    print(f"\n[2] correlation-loss overhead of a GemNet-T training step (selection edge, fixed c 0.1, "
          f"{args.batch_size} x 96 atoms, {args.steps} steps x {args.corr_repeats} rounds, "
          f"sample_edges {args.sample_edges}; paper: +1%)")
    frames = synthetic_frames(args.batch_size * 2, seed=0)
    ns = argparse.Namespace(
        selection=None, sample_edges=args.sample_edges, batch_size=args.batch_size, device=args.device,
        dtype=args.dtype, warmup=1, repeats=args.corr_repeats, steps=args.steps, profile=0, csv=args.csv,
    )
    for size in args.corr_sizes:
        config, layers = CORR_SIZES[size]
        bench("gemnet", size, ns, frames, spec=spec("gemnet", config, layers, args.dtype))


def training_steps(args) -> None:
    """Baseline training step of the embedded-size models, interleaved, and their ratios."""
    frames = synthetic_frames(args.batch_size * 2, seed=0)
    rows = {"NequIP": ("nequip", "embedded"), "Allegro": ("allegro", "embedded"), "GemNet-T": ("gemnet", "gemnet")}
    modes, data, times = {}, {}, {}
    for name, (family, config) in rows.items():
        s = spec(family, config, None, args.dtype)
        modes[name] = build(family, s["model"], None, args.device)
        data[name] = batches(frames, s["r_max"], args.batch_size, args.device)
        run_block(*modes[name], data[name], 1, args.device)
        times[name] = []
    for _ in range(args.corr_repeats):
        for name in rows:
            times[name].append(run_block(*modes[name], data[name], args.steps, args.device))
    base = statistics.median(times["NequIP"])
    print(f"\n[3] training step (forward, forces, loss, backward, Adam, EMA) at the embedded sizes, "
          f"{args.batch_size} x 96 atoms, {args.steps} steps x {args.corr_repeats} rounds")
    for name in rows:
        t = statistics.median(times[name])
        print(f"    {name:9s} {1e3 * t:9.1f} ms/step   /NequIP {t / base:6.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds of force calls")
    parser.add_argument("--skip-corr", action="store_true", help="skip part 2")
    parser.add_argument("--skip-training", action="store_true", help="skip part 3")
    parser.add_argument("--skip-force-calls", action="store_true", help="skip part 1")
    parser.add_argument("--corr-sizes", nargs="+", default=["embedded", "paper-1block"],
                        choices=["embedded", "paper-1block", "paper"])
    parser.add_argument("--batch-size", type=int, default=2, help="96-atom frames per training step")
    parser.add_argument("--steps", type=int, default=2, help="training steps per timed block")
    parser.add_argument("--corr-repeats", type=int, default=4, help="rounds of (baseline, corr) blocks")
    parser.add_argument("--sample-edges", type=int, default=1024, help="edges per structure")
    parser.add_argument("--csv", default=None, help="append part 2's rows (bench_corr_overhead's columns) to this CSV")
    parser.add_argument("--smoke", action="store_true",
                        help=f"check that it runs: embedded sizes only, one force call, {SMOKE}")
    args = parser.parse_args(argv)
    apply_smoke(args, parser)
    if args.smoke:
        args.repeats = 1 if args.repeats == parser.get_default("repeats") else args.repeats
        args.corr_repeats = 2 if args.corr_repeats == parser.get_default("corr_repeats") else args.corr_repeats
        args.corr_sizes = ["embedded"] if args.corr_sizes == parser.get_default("corr_sizes") else args.corr_sizes
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from nequip.utils.global_state import set_global_state

    set_global_state()
    if not args.skip_force_calls:
        force_calls(args)
    if not args.skip_corr:
        corr_overhead(args)
    if not args.skip_training:
        training_steps(args)


if __name__ == "__main__":
    main()
