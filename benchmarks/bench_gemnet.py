"""GemNet-T cost, side by side with NequIP and Allegro: force calls and the correlation-loss overhead.

1. Force-call time (energy + forces by autograd, eval mode, model call only: the neighbour list is
   built once beforehand) on the 96-atom monoclinic HfO2 cell (2x2x2 P2_1/c, rattled by 0.05 Å), of
   GemNet-T at the embedded size (1 block, atom/edge 32, trip 16, rbf/cbf 8, bilinear 16, r_max 4 Å)
   and at the paper's Table A7 size (atom/edge 128, trip 64, rbf/cbf 16, bilinear 64, r_max 6 Å,
   max_neighbors 50; 1 and 4 blocks), next to NequIP (4 layers, l_max 2, 32 features, r_max 6 Å) and
   Allegro (3 layers, l_max 2, 32 scalar / 16 tensor, r_max 6 Å) at their paper sizes and at the
   embedded campaign's sizes (2 layers, l_max 1, r_max 4 Å). The models run in interleaved rounds
   (one call of each per round); the median is reported with its ratio to NequIP at the paper size
   and at the embedded size.
2. The correlation-loss overhead of a GemNet-T training step (``bench_corr_overhead.bench``: the
   training module with and without the penalty, same weights and batches, ABBA blocks; paper: +1%).
3. The baseline training step of GemNet-T, NequIP and Allegro at the embedded campaign's sizes
   (interleaved rounds), for the cost of adding GemNet-T to the embedded campaign.

Weights are freshly initialised (timings do not depend on them). Usage::

    python benchmarks/bench_gemnet.py [--threads 2] [--repeats 5] [--device cpu|cuda]
        [--skip-force-calls] [--skip-corr] [--skip-training]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from bench_corr_overhead import SIZES, batches, bench, build, run_block, synthetic_frames

from gnnff_stability.structures import monoclinic_hfo2

TYPES = ["Hf", "O"]
GEMNET_EMBEDDED = dict(num_blocks=1, emb_size_atom=32, emb_size_edge=32, emb_size_trip=16,
                       emb_size_rbf=8, emb_size_cbf=8, emb_size_bil_trip=16, max_neighbors=50)
GEMNET_A7 = dict(emb_size_atom=128, emb_size_edge=128, emb_size_trip=64, emb_size_rbf=16,
                 emb_size_cbf=16, emb_size_bil_trip=64, num_radial=6, num_spherical=7,
                 max_neighbors=50)
GEMNET = "gnnff_stability.models.gemnet.GemNetTModel"
SIZES[("gemnet", "embedded")] = dict(r_max=4.0, model=dict(_target_=GEMNET, **GEMNET_EMBEDDED))
SIZES[("gemnet", "paper")] = dict(r_max=6.0, model=dict(_target_=GEMNET, num_blocks=4, **GEMNET_A7))
SIZES[("gemnet", "paper-1block")] = dict(r_max=6.0, model=dict(_target_=GEMNET, num_blocks=1, **GEMNET_A7))

# the embedded campaign's NequIP and Allegro (config/config.yaml: 2 layers, l_max 1, r_max 4 Å)
SIZES[("nequip", "demo")] = dict(SIZES[("nequip", "embedded")], r_max=4.0)
SIZES[("allegro", "demo")] = dict(SIZES[("allegro", "embedded")], r_max=4.0)

#: rows of part 1: label -> (family, size key of SIZES)
NEQUIP_PAPER, NEQUIP_DEMO = "NequIP paper (4L, l_max 2, 32f, 6 A)", "NequIP embedded (2L, l_max 1, 16f, 4 A)"
ROWS = {
    NEQUIP_DEMO: ("nequip", "demo"),
    "Allegro embedded (2L, l_max 1, 16s/4t, 4 A)": ("allegro", "demo"),
    NEQUIP_PAPER: ("nequip", "paper"),
    "Allegro paper (3L, l_max 2, 32s/16t, 6 A)": ("allegro", "paper"),
    "GemNet-T embedded (1 block, 32/32/16, 4 A)": ("gemnet", "embedded"),
    "GemNet-T Table A7, 1 block (6 A, 50 nb)": ("gemnet", "paper-1block"),
    "GemNet-T Table A7, 4 blocks (6 A, 50 nb)": ("gemnet", "paper"),
}


def build_model(family: str, size: str, device: str, dtype: str):
    from hydra.utils import instantiate

    spec = SIZES[(family, size)]
    cfg = dict(spec["model"], seed=0, model_dtype=dtype, type_names=TYPES, r_max=spec["r_max"],
               avg_num_neighbors=40.0, per_type_energy_shifts=-9.8, per_type_energy_scales=1.5)
    return instantiate(cfg, _recursive_=False).to(device).eval()


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
    for label, (family, size) in ROWS.items():
        models[label] = build_model(family, size, args.device, args.dtype)
        graphs[label], n_atoms = cell_graph(SIZES[(family, size)]["r_max"], args.device)
        times[label] = []
        for _ in range(2):  # warm-up
            models[label](graphs[label].copy())
    for _ in range(args.repeats):
        for label in ROWS:
            if args.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = models[label](graphs[label].copy())
            out["forces"].sum().item()
            times[label].append(time.perf_counter() - t0)
    paper, demo = statistics.median(times[NEQUIP_PAPER]), statistics.median(times[NEQUIP_DEMO])
    print(f"\n[1] force call on {n_atoms}-atom monoclinic HfO2, device {args.device}, "
          f"threads {torch.get_num_threads()}, {args.dtype}, median of {args.repeats} interleaved rounds")
    print(f"    {'model':44s} {'edges':>6s} {'params':>8s} {'ms/call':>9s} {'range':>17s} "
          f"{'/NequIP paper':>13s} {'/NequIP emb.':>12s}")
    for label in ROWS:
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
        dtype=args.dtype, warmup=1, repeats=args.corr_repeats, steps=args.steps, profile=0,
    )
    for size in args.corr_sizes:
        bench("gemnet", size, ns, frames)


def training_steps(args) -> None:
    """Baseline training step of the embedded-size models, interleaved, and their ratios."""
    frames = synthetic_frames(args.batch_size * 2, seed=0)
    rows = {"NequIP": ("nequip", "demo"), "Allegro": ("allegro", "demo"),
            "GemNet-T": ("gemnet", "embedded")}
    modes, data, times = {}, {}, {}
    for name, key in rows.items():
        modes[name] = build(*key, None, args.device, args.dtype)
        data[name] = batches(frames, SIZES[key]["r_max"], args.batch_size, args.device)
        run_block(*modes[name], data[name], 1, args.device)
        times[name] = []
    for _ in range(args.corr_repeats):
        for name in rows:
            times[name].append(run_block(*modes[name], data[name], args.steps, args.device))
    base = statistics.median(times["NequIP"])
    print(f"\n[3] training step (forward, forces, loss, backward, Adam, EMA) at the embedded sizes, "
          f"{args.batch_size} x 96 atoms, r_max 4 A, {args.steps} steps x {args.corr_repeats} rounds")
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
    args = parser.parse_args(argv)
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
