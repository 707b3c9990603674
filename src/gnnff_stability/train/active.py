"""Retraining and packaging of an active method (``methods.<name>.active``): the training end of a round.

:func:`retrain_round` trains on a round's merged training split, fine-tuning the round's model or from
scratch (``active.retrain``), and writes the round's ``metrics.json``: the training metrics of
:func:`gnnff_stability.train.run.train_model`, the label budget (reference calls) and the wall time of the
round (harvest MD, labelling, training). :func:`finish_active` makes the active method's model and
``metrics.json`` from the last round that retrained, or from round 0's model when round 0 harvested nothing,
with the label budget over all rounds and the reason the loop ended.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gnnff_stability.settings import MaterialSettings, ModelPreset, RetrainSettings, TrainingSettings

from .run import train_model

__all__ = ["finish_active", "retrain_round"]

logger = logging.getLogger(__name__)


def retrain_round(
    run: Mapping[str, Any],
    model: ModelPreset,
    training: TrainingSettings,
    retrain: RetrainSettings,
    material: MaterialSettings,
    al_round: int,
    files: Mapping[str, str | Path],
    run_dir: str | Path,
    outputs: Mapping[str, str | Path],
    init_checkpoint: str | Path | None,
    threads: int = 1,
) -> dict[str, Any]:
    """Retrain an active method on one round's merged split and write the round's metrics.

    Parameters
    ----------
    run
        The active method's row of the training table (:func:`gnnff_stability.grid.training_runs`).
    model, training
        The model preset and the ``training`` block; the retraining's epochs and learning rate are
        ``retrain``'s.
    retrain
        ``active.retrain``.
    material
        The ``material`` block (the model's type names, :func:`gnnff_stability.train.run.train_model`).
    al_round
        The round.
    files
        ``train`` (the merged split), ``valid``, ``test``, ``prefit`` (decomposition from scratch),
        ``selection`` and ``label`` (the round's ``selection.json`` and ``label.json``).
    run_dir, outputs
        As :func:`gnnff_stability.train.run.train_model` (``model``, ``metrics``, ``epochs``).
    init_checkpoint
        The checkpoint of the round's model (fine-tuning); ignored with ``mode: scratch``.
    threads
        CPU threads.

    Returns
    -------
    dict
        The round's metrics: the training's, plus ``round``, ``retrain`` (mode), ``n_train_frames``,
        ``n_harvested``, ``label_budget`` (reference calls), ``label_wall_s``, ``harvest_md_wall_s``,
        ``round_wall_s`` (harvest MD + labelling + training).
    """
    settings = dataclasses.replace(training, max_epochs=int(retrain.epochs), lr=float(retrain.lr))
    init = init_checkpoint if retrain.mode == "finetune" else None
    train_files = {k: files[k] for k in ("train", "valid", "test", "prefit") if k in files}
    if init is not None:
        train_files.pop("prefit", None)
    metrics = train_model(run, model, settings, material, train_files, run_dir, outputs, threads,
                          init_checkpoint=init)
    selection = json.loads(Path(files["selection"]).read_text())
    label = json.loads(Path(files["label"]).read_text())
    n_train = sum(1 for line in Path(files["train"]).read_text().splitlines() if line.strip().isdigit())
    train_wall = float(metrics.get("train_wall_s") or 0.0)
    metrics |= {
        "round": int(al_round),
        "retrain": retrain.mode,
        "n_train_frames": n_train,
        "n_harvested": int(selection["n_selected"]),
        "label_budget": int(label["reference_calls"]),
        "label_wall_s": float(label["wall_s"]),
        "harvest_md_wall_s": float(selection["harvest_md_wall_s"]),
        "round_wall_s": float(selection["harvest_md_wall_s"]) + float(label["wall_s"]) + train_wall,
    }
    Path(outputs["metrics"]).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def finish_active(
    run: Mapping[str, Any],
    rounds: Sequence[str | Path],
    stop: str | Path | None,
    start: Mapping[str, str | Path],
    outputs: Mapping[str, str | Path],
) -> dict[str, Any]:
    """The active method's model and metrics: those of its last retrained round.

    Parameters
    ----------
    run
        The active method's row of the training table.
    rounds
        The ``metrics.json`` of every round that retrained, in order.
    stop
        The ``selection.json`` of the round that harvested nothing and ended the loop, or ``None`` when every
        round asked for retrained.
    start
        ``model``, ``metrics``, ``epochs`` of the model the last round started from: used when no round
        retrained (round 0 harvested nothing), else the last round's files are.
    outputs
        ``model``, ``metrics``, ``epochs`` of the active method (the files every training writes).

    Returns
    -------
    dict
        The metrics written: the last model's, with the active method's ``model``, ``method``, ``role`` and
        ``stabilisers``, and ``active_rounds_done``, ``label_budget`` (reference calls over all rounds),
        ``active_wall_s`` (harvest MD, labelling and training over all rounds), ``active_stop`` (why the loop
        ended: a round without harvest, or the rounds asked for) and ``active_rounds`` (each round's record).
    """
    per_round = [json.loads(Path(p).read_text()) for p in rounds]
    source = {"model": start["model"], "metrics": start["metrics"], "epochs": start["epochs"]}
    if per_round:
        last = Path(rounds[-1]).parent
        source = {"model": last / Path(outputs["model"]).name, "metrics": Path(rounds[-1]),
                  "epochs": last / Path(outputs["epochs"]).name}
    for key in ("model", "epochs"):
        Path(outputs[key]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source[key], outputs[key])
    metrics = json.loads(Path(source["metrics"]).read_text())
    reason = json.loads(Path(stop).read_text())["stop"] if stop is not None else (
        f"{len(per_round)} round(s) done, as active.rounds asks")
    keep = ("round", "n_harvested", "n_train_frames", "label_budget", "label_wall_s", "harvest_md_wall_s",
            "round_wall_s", "emae_meV_per_atom", "fmae_meV_per_A")
    metrics |= {
        "model": run["model"],
        "method": run["method"],
        "role": run["role"],
        "stabilisers": run["stabilisers"],
        "active_rounds_done": len(per_round),
        "label_budget": int(sum(r["label_budget"] for r in per_round)),
        "active_wall_s": float(sum(r["round_wall_s"] for r in per_round)),
        "active_stop": reason,
        "active_rounds": [{k: r[k] for k in keep if k in r} for r in per_round],
    }
    for key in ("round", "retrain", "n_train_frames", "n_harvested", "label_wall_s", "harvest_md_wall_s",
                "round_wall_s"):
        metrics.pop(key, None)
    Path(outputs["metrics"]).write_text(json.dumps(metrics, indent=2) + "\n")
    logger.info("%s: %d round(s), label budget %d; %s", run["method"], len(per_round), metrics["label_budget"],
                reason)
    return metrics
