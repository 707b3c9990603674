"""One training run of the campaign: ``nequip-train`` on a family's template, packaging, evaluation.

:func:`train_model` is the ``train_model`` rule's library call. It takes the run-table row (where the
method preset was resolved for the model's family) and the typed presets, runs the real ``nequip-train``
(its own entry point, started by :mod:`.launch` with fixed threads and deterministic kernels)
with every campaign setting passed as a Hydra override, resumes from ``last.ckpt`` only when that
checkpoint was written under the same resolved settings (:func:`resume_checkpoint`), packages the best or
the last checkpoint (``training.checkpoint``), and writes ``metrics.json`` (carrying the method preset's own name and role) and
``metrics_epoch.csv``.

Paired design: what a training seed fixes
------------------------------------------
An arm and its baseline trained with the same ``seed`` share what nequip derives from it, whatever
the arm adds to the loss:

- the initial weights: nequip's ``model_builder`` seeds torch with ``seed`` right before the model is
  built, inside ``isolate_rng``; the training module builds the model before it sets up any loss term
  of its own, and the correlation loss draws its edge sample from a generator of its own
  (``corr_seed``), never from torch's global one. An arm whose model has more modules (the decomposition's
  body terms, a ZBL prior) builds the GNN first, from the same seed;
- the data order: the data module's ``seed`` (the same ``seed``) seeds the generator of the training
  data loader, which alone draws each epoch's shuffle; the splits are the campaign's files;
- the MD start cells and velocity seeds, which come from the run's ``cell_seed`` and ``vseed``
  (``gnnff_stability.md``), not from the training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from gnnff_stability.grid import resolve_device
from gnnff_stability.paths import CHECKPOINT_FILES
from gnnff_stability.proc import check_streamed, cli_env
from gnnff_stability.settings import MaterialSettings, ModelPreset, TrainingSettings

from .deploy import package_checkpoint
from .evaluate import evaluate_model
from .launch import DETERMINISM_ENV
from .hydra import hydra_overrides, hydra_value, method_overrides, template_dir, template_name

__all__ = ["CHECKPOINT_FILES", "LAUNCHER", "SETTINGS_STAMP", "WALL_TIME_FIELDS", "collect_epoch_metrics",
           "finetune_overrides", "resume_checkpoint", "settings_digest", "train_model"]

logger = logging.getLogger(__name__)

#: The module that runs nequip-train with fixed threads and deterministic kernels (:mod:`.launch`).
LAUNCHER = "gnnff_stability.train.launch"
#: Fields of ``metrics.json`` that are wall times: the only ones that differ between two trainings with the
#: same seed, data, settings and thread count.
WALL_TIME_FIELDS = ("s_per_epoch", "s_per_epoch_train", "train_wall_s")
#: The file of the run directory that holds :func:`settings_digest` of the settings its checkpoints were
#: written under.
SETTINGS_STAMP = "settings.sha256"


def settings_digest(overrides: Sequence[str], inputs: Sequence[str | Path] = ()) -> str:
    """SHA-256 of one training's resolved settings: its Hydra overrides, in order, and the bytes of its
    input files (data splits, phase-1 file, the family's template).

    Two trainings share a digest only when nequip-train would be given the same object graph and the same
    data, so a checkpoint of one may continue the other.
    """
    digest = hashlib.sha256()
    for override in overrides:
        digest.update(override.encode())
        digest.update(b"\0")
    for path in inputs:
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


def resume_checkpoint(run_dir: str | Path, digest: str) -> Path | None:
    """The ``last.ckpt`` of ``run_dir`` to resume, or ``None`` to start afresh.

    A checkpoint is resumed only when the run directory's :data:`SETTINGS_STAMP` holds ``digest``: a kill
    or a crash of the same training continues. A checkpoint written under other settings (a changed
    setting of a finished training, or no stamp at all) is never resumed: the run directory is emptied, so
    that neither its checkpoints nor its CSV logs mix into the new training. The stamp of ``digest`` is
    then written, before nequip-train starts.
    """
    run_dir = Path(run_dir)
    last = run_dir / CHECKPOINT_FILES["last"]
    stamp = run_dir / SETTINGS_STAMP
    written = stamp.read_text().strip() if stamp.exists() else None
    if last.exists() and written == digest:
        logger.info("resuming from %s (written under the same settings, %s)", last, digest[:12])
        return last
    if run_dir.exists() and any(run_dir.iterdir()):
        reason = "no settings stamp" if written is None else f"settings {written[:12]}, now {digest[:12]}"
        logger.info("not resuming: %s holds a training under other settings (%s); starting afresh",
                    run_dir, reason)
        shutil.rmtree(run_dir)
    else:
        logger.info("not resuming: no checkpoint in %s; starting afresh", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest + "\n")
    return None


def collect_epoch_metrics(run_dir: str | Path) -> pd.DataFrame:
    """Per-epoch metrics of a run from nequip's CSV logs (all ``csv/version_*``, resumed runs too).

    Step-level columns (``*_step/*``, ``step``) are dropped, the epoch-level rows of each epoch are
    merged into one, and for an epoch logged by several (resumed) runs the latest run wins.

    Returns
    -------
    pandas.DataFrame
        One row per epoch, ``epoch`` first, then the metric columns sorted by name.
    """
    paths = sorted(
        Path(run_dir).glob("csv/version_*/metrics.csv"),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    frames = []
    for order, path in enumerate(paths):
        df = pd.read_csv(path)
        if df.empty or "epoch" not in df:
            continue
        df["_run"] = order
        frames.append(df)
    if not frames:
        return pd.DataFrame({"epoch": pd.Series(dtype=int)})
    df = pd.concat(frames, ignore_index=True)
    keep = [c for c in df.columns if c not in ("step",) and "_step/" not in c and not c.startswith("test")]
    df = df[keep]
    metric_cols = [c for c in df.columns if c not in ("epoch", "_run")]
    df = df.dropna(subset=metric_cols, how="all")
    if df.empty:
        return pd.DataFrame({"epoch": pd.Series(dtype=int)})
    latest = df.groupby("epoch")["_run"].transform("max")
    df = df[df["_run"] == latest]
    merged = df.groupby("epoch", as_index=False)[metric_cols].last()
    merged["epoch"] = merged["epoch"].astype(int)
    cols = ["epoch"] + sorted(c for c in merged.columns if c != "epoch" and merged[c].notna().any())
    return merged[cols].sort_values("epoch").reset_index(drop=True)


def finetune_overrides(checkpoint: str | Path) -> list[str]:
    """Hydra overrides that make a template's model the one of a nequip checkpoint (fine-tuning)."""
    path = Path(checkpoint).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint to fine-tune {path} does not exist")
    model = {"_target_": "nequip.model.ModelFromCheckpoint", "checkpoint_path": str(path)}
    return ["~training_module.model", f"+training_module.model={hydra_value(model)}"]


def train_model(
    run: Mapping[str, Any],
    model: ModelPreset,
    training: TrainingSettings,
    material: MaterialSettings,
    files: Mapping[str, str | Path],
    run_dir: str | Path,
    outputs: Mapping[str, str | Path],
    threads: int = 1,
    init_checkpoint: str | Path | None = None,
) -> dict[str, Any]:
    """Train one model with ``nequip-train``, package it, evaluate it and write its metrics.

    Parameters
    ----------
    run
        The run-table row of this training (:func:`gnnff_stability.grid.training_runs`): ``model``,
        ``layers``, ``method``, ``seed`` and the method resolved for the model's family: ``family``,
        ``stabilisers``, the flags ``sam``, ``prior``, ``decomposition``, the settings
        ``corr_settings``, ``sam_settings``, ``decomposition_settings``, and ``corr_selection``,
        ``role``. Nothing of the method preset is read again.
    model
        The model preset (family and hyper-parameters).
    training
        The ``training`` block.
    material
        The ``material`` block: its species, in LAMMPS type order, are the model's type names (and the
        species of a ZBL prior).
    files
        ``train``, ``valid``, ``test``: the extended-XYZ splits; ``prefit``: the phase-1 body-term file
        of a decomposition method.
    run_dir
        nequip-train's output directory (checkpoints, CSV logs, Hydra config). A ``last.ckpt``
        there written under the same settings is resumed (the epoch counter, optimiser, EMA and
        schedule continue); one written under other settings is discarded (:func:`resume_checkpoint`).
    outputs
        ``model`` (``model.nequip.zip``), ``metrics`` (``metrics.json``), ``epochs``
        (``metrics_epoch.csv``).
    threads
        Intra-op CPU threads of the training process (:func:`.launch.fix_numerics`, with deterministic
        kernels). Two trainings with the same seed, data, settings and thread count give the same
        weights bit for bit, and ``metrics.json`` files that differ only in :data:`WALL_TIME_FIELDS`.
    init_checkpoint
        A nequip checkpoint to fine-tune: the model is that checkpoint's (nequip's ``ModelFromCheckpoint``:
        its architecture, prior and body terms, and weights), trained further under this run's loss,
        stabilisers, data and ``training`` settings; ``None`` builds the model anew from the template.

    Returns
    -------
    dict
        The metrics written to ``outputs["metrics"]``: the run's keys (``method`` is the preset's own
        name) and resolved role, EMAE, FMAE, the Corr value (last selected layer and per layer),
        ``s_per_epoch`` (median epoch wall time), ``s_per_epoch_train`` (training batches only),
        ``train_wall_s`` (sum of the per-epoch wall times over all resumed runs), ``checkpoint`` (the
        packaged one, best|last), ``resumed``.
    """
    family = run["family"]
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    species = material.species
    overrides = hydra_overrides(model, int(run["layers"]), int(run["seed"]), run["corr_settings"], training,
                                species, files, run_dir)
    if init_checkpoint is None:
        overrides += method_overrides(run, species, files.get("prefit") or None)
    else:
        # the checkpoint carries the architecture (prior, body terms included); the rest of the method applies
        overrides += method_overrides({**run, "prior": "none", "decomposition": False}, species)
        overrides += finetune_overrides(init_checkpoint)
    t0 = time.perf_counter()
    with template_dir() as templates:
        template = template_name(family)
        inputs = [files[name] for name in sorted(files) if files[name]] + [templates / f"{template}.yaml"]
        if init_checkpoint is not None:
            inputs.append(init_checkpoint)
        last = resume_checkpoint(run_dir, settings_digest(overrides, inputs))
        resumed = last is not None
        if resumed:
            overrides.append(f"+ckpt_path={hydra_value(last)}")
        check_streamed([sys.executable, "-m", LAUNCHER, "--threads", str(max(int(threads), 1)),
                        "-cp", str(templates), "-cn", template, *overrides],
                       cli_env(threads, DETERMINISM_ENV), "nequip-train")
    logger.info("nequip-train finished in %.1f s", time.perf_counter() - t0)

    chosen = run_dir / CHECKPOINT_FILES[training.checkpoint]
    if not chosen.exists():
        raise RuntimeError(f"nequip-train wrote no {chosen} (training.checkpoint: {training.checkpoint})")
    logger.info("packaging the %s checkpoint %s", training.checkpoint, chosen)
    package_checkpoint(chosen, outputs["model"], threads)

    epochs = collect_epoch_metrics(run_dir)
    Path(outputs["epochs"]).parent.mkdir(parents=True, exist_ok=True)
    epochs.to_csv(outputs["epochs"], index=False)

    torch.set_num_threads(max(int(threads), 1))
    # on the training device: at paper size a CPU pass over the test set takes longer than the training step
    evaluation = evaluate_model(outputs["model"], files["test"], family, run["corr_selection"],
                                device=resolve_device(training.device))

    def _median(column: str) -> float:
        if column in epochs and epochs[column].notna().any():
            return float(epochs[column].median())
        return math.nan

    metrics = {
        "model": run["model"],
        "family": family,
        "layers": int(run["layers"]),
        "method": run["method"],
        "role": run["role"],
        "stabilisers": run["stabilisers"],
        "seed": int(run["seed"]),
        "emae_meV_per_atom": evaluation["emae_meV_per_atom"],
        "fmae_meV_per_A": evaluation["fmae_meV_per_A"],
        "corr_value": evaluation["corr_value"],
        "corr_value_per_layer": evaluation["corr_value_per_layer"],
        "corr_layers": evaluation["corr_layers"],
        "corr_selection": evaluation["corr_selection"],
        "s_per_epoch": _median("time/epoch_s"),
        "s_per_epoch_train": _median("time/train_s"),
        "epochs": int(epochs["epoch"].max() + 1) if len(epochs) else 0,
        "train_wall_s": float(epochs["time/epoch_s"].sum()) if "time/epoch_s" in epochs else math.nan,
        "n_test_frames": evaluation["n_frames"],
        "checkpoint": training.checkpoint,
        "resumed": resumed,
    }
    Path(outputs["metrics"]).parent.mkdir(parents=True, exist_ok=True)
    Path(outputs["metrics"]).write_text(json.dumps(metrics, indent=2) + "\n")
    logger.info(
        "%s L%d %s seed %d: EMAE %.2f meV/atom, FMAE %.1f meV/Å, Corr %.4f, %.2f s/epoch",
        run["model"], metrics["layers"], run["method"], metrics["seed"], metrics["emae_meV_per_atom"],
        metrics["fmae_meV_per_A"], metrics["corr_value"], metrics["s_per_epoch"],
    )
    return metrics
