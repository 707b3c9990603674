"""Training-step cost of the stabilisers against the baseline, measured side by side.

Modes (all the same NequIP or Allegro model, same seed, same pre-collated batches):

- ``baseline``: nequip's EMA training module (:class:`~gnnff_stability.train.sam.CorrSAMLightningModule`
  with ``sam: null`` and ``corr: null``, i.e. exactly ``EMALightningModule``);
- ``sam``: the same with SAM (``rho`` 0.05), two forward/backward passes per step;
- ``sam_adaptive``: ASAM (``rho`` 0.5, ``eta`` 0.01);
- ``zbl``: the model with nequip's ZBL ``pair_potential``;
- ``decomposed``: :func:`~gnnff_stability.models.decomposition.DecomposedModel` with frozen two- and
  three-body terms (3 Å; pre-fitted for one epoch, which is all the timing needs).

A step is what Lightning's automatic optimisation runs, called the same way: a closure of
``training_step`` (forward with forces, nequip's loss), ``zero_grad`` and ``backward`` handed to
the module's ``optimizer_step`` (Adam step and EMA update; SAM calls the closure twice). Lightning's
own per-step bookkeeping is left out (the same for every mode). Blocks of ``--steps`` steps rotate
through the modes for ``--repeats`` rounds; the ratio printed is the median over rounds of
mode/baseline block times, with the range over rounds and the ratio of the fastest blocks, for
wall time and for the process's CPU time. On a shared, loaded machine the CPU-time ratio with
``--threads 1`` is the steadier estimate of the extra work.

Allegro-Legato reports +75 % training time for SAM (a ratio of 1.75).

Usage::

    python benchmarks/bench_stabilisers.py                       # CPU, NequIP and Allegro, embedded size
    python benchmarks/bench_stabilisers.py --family nequip --steps 5 --repeats 10
    python benchmarks/bench_stabilisers.py --device cuda --size paper --steps 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from bench_corr_overhead import synthetic_frames  # the same rattled HfO2 cells (benchmarks/ is on sys.path)

SIZES = {
    ("nequip", "embedded"): dict(
        r_max=5.0, model=dict(_target_="nequip.model.NequIPGNNModel", num_layers=2, l_max=1, num_features=16,
                              radial_mlp_depth=2, radial_mlp_width=32, num_bessels=8),
    ),
    ("nequip", "paper"): dict(
        r_max=6.0, model=dict(_target_="nequip.model.NequIPGNNModel", num_layers=4, l_max=2, num_features=32,
                              radial_mlp_depth=2, radial_mlp_width=64, num_bessels=8),
    ),
    ("allegro", "embedded"): dict(
        r_max=5.0, model=dict(
            _target_="allegro.model.AllegroModel", num_layers=2, l_max=1, num_scalar_features=16,
            num_tensor_features=4, scalar_embed_mlp_hidden_layers_width=32, allegro_mlp_hidden_layers_width=32,
            readout_mlp_hidden_layers_width=32,
            radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8},
        ),
    ),
    ("allegro", "paper"): dict(
        r_max=6.0, model=dict(
            _target_="allegro.model.AllegroModel", num_layers=3, l_max=2, num_scalar_features=32,
            num_tensor_features=16, scalar_embed_mlp_hidden_layers_depth=3,
            scalar_embed_mlp_hidden_layers_width=32, allegro_mlp_hidden_layers_width=32,
            readout_mlp_hidden_layers_width=32,
            radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8},
        ),
    ),
}
TYPES = ["Hf", "O"]
MODES = ("baseline", "sam", "sam_adaptive", "zbl", "decomposed")


def batches(frames, r_max: float, batch_size: int, device: str):
    from nequip.data import AtomicDataDict

    from gnnff_stability.models.prefit import frames_to_data

    items = frames_to_data(frames, TYPES, r_max)
    return [
        AtomicDataDict.to_(AtomicDataDict.batched_from_list(items[i : i + batch_size]), device)
        for i in range(0, len(items) - batch_size + 1, batch_size)
    ]


def build(mode: str, family: str, size: str, prefit: Path, device: str, dtype: str):
    from gnnff_stability.models.priors import zbl_pair_potential
    from gnnff_stability.train.sam import CorrSAMLightningModule

    spec = SIZES[(family, size)]
    inner = dict(spec["model"], avg_num_neighbors=40.0, per_type_energy_shifts=-9.8, per_type_energy_scales=1.5)
    common = dict(seed=0, model_dtype=dtype, type_names=TYPES, r_max=spec["r_max"])
    if mode == "decomposed":
        model = dict(_target_="gnnff_stability.models.decomposition.DecomposedModel", **common, prefit=str(prefit),
                     gnn=inner)
    else:
        model = dict(inner, **common)
        if mode == "zbl":
            model["pair_potential"] = zbl_pair_potential(TYPES)
    sam = {"sam": {"rho": 0.05}, "sam_adaptive": {"rho": 0.5, "adaptive": True}}.get(mode)
    module = CorrSAMLightningModule(
        sam=sam, corr=None, model=model,
        loss=dict(_target_="nequip.train.EnergyForceLoss", per_atom_energy=True,
                  coeffs={"total_energy": 1.0, "forces": 1.0}),
        val_metrics=dict(_target_="nequip.train.EnergyForceMetrics", coeffs={"forces_mae": 1.0}),
        optimizer=dict(_target_="torch.optim.Adam", lr=1e-3),
        num_datasets={"train": 1, "val": 1, "test": 1},
    ).to(device)
    optimizer = torch.optim.Adam(module.model.parameters(), lr=1e-3)
    return module, optimizer


def run_block(module, optimizer, data, steps: int, device: str) -> tuple[float, float]:
    """Wall and process-CPU seconds per step over ``steps`` steps (one synchronisation at each end)."""
    if device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(steps):
        batch = data[i % len(data)]

        def closure(batch=batch, i=i):
            loss = module.training_step(batch.copy(), i)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            return loss

        module.optimizer_step(0, i, optimizer, closure)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def bench(family: str, size: str, args, frames, prefit: Path) -> dict[str, float]:
    data = batches(frames, SIZES[(family, size)]["r_max"], args.batch_size, args.device)
    n_edges = data[0]["edge_index"].shape[1]
    modes = {m: build(m, family, size, prefit, args.device, args.dtype) for m in args.modes}
    for module, optimizer in modes.values():
        run_block(module, optimizer, data, args.warmup, args.device)
    wall = {m: [] for m in modes}
    cpu = {m: [] for m in modes}
    names = list(modes)
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            w, c = run_block(*modes[name], data, args.steps, args.device)
            wall[name].append(w)
            cpu[name].append(c)
    print(f"{family} {size}: {n_edges} edges per batch, baseline {statistics.median(wall['baseline']) * 1e3:.1f} "
          f"ms/step wall, {statistics.median(cpu['baseline']) * 1e3:.1f} ms/step CPU", flush=True)
    ratios = {}
    for name in names[1:]:
        per_round = [t / b for t, b in zip(wall[name], wall["baseline"])]
        per_round_cpu = [t / b for t, b in zip(cpu[name], cpu["baseline"])]
        ratios[name] = statistics.median(per_round)
        print(f"  {name:13s} {statistics.median(wall[name]) * 1e3:9.1f} ms/step  wall ratio {ratios[name]:.3f} "
              f"(rounds {min(per_round):.3f}-{max(per_round):.3f}; fastest blocks "
              f"{min(wall[name]) / min(wall['baseline']):.3f})  CPU-time ratio {statistics.median(per_round_cpu):.3f} "
              f"(rounds {min(per_round_cpu):.3f}-{max(per_round_cpu):.3f})", flush=True)
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=["nequip", "allegro", "both"], default="both")
    parser.add_argument("--size", choices=["embedded", "paper"], default="embedded")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--batch-size", type=int, default=4, help="96-atom frames per step")
    parser.add_argument("--steps", type=int, default=4, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=6, help="rounds over all modes")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per mode")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="modes to time (baseline is always included)")
    args = parser.parse_args(argv)
    args.modes = ["baseline"] + [m for m in args.modes if m != "baseline"]
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from nequip.utils.global_state import set_global_state

    from gnnff_stability.models.prefit import prefit_body_terms

    set_global_state()
    frames = synthetic_frames(args.batch_size * 4, seed=0)
    families = ["nequip", "allegro"] if args.family == "both" else [args.family]
    print(f"device {args.device}, threads {args.threads}, batch {args.batch_size} x {len(frames[0])} atoms, "
          f"{args.steps} steps x {args.repeats} rounds, dtype {args.dtype}")
    with tempfile.TemporaryDirectory() as tmp:
        prefit = Path(tmp) / "body.pt"
        if "decomposed" in args.modes:
            from gnnff_stability.config import section

            dec = section("methods.stub.decomposition", {"body": {"r_cut": {"Hf-Hf": 3.8, "Hf-O": 3.0, "O-O": 3.0}}})
            prefit_body_terms(frames[:4], prefit, TYPES, dec["body"], energy_weight=1.0, force_weight=1.0, seed=0,
                              **{**dec["prefit"], "epochs": 1, "batch_size": 4})
        for family in families:
            bench(family, args.size, args, frames, prefit)


if __name__ == "__main__":
    main()
