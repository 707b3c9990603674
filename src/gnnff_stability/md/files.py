"""The output files of one MD run, as one typed object.

Every MD engine (:func:`gnnff_stability.md.run_md`, :func:`~gnnff_stability.md.embedded.run_embedded`,
:func:`~gnnff_stability.md.hpc.run_hpc`) and the metric runs (:mod:`.metric_runs`) write the same four
files (contract formats in ``docs/md.md``); :class:`MDRunFiles` names them once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gnnff_stability import paths

__all__ = ["MDRunFiles"]


@dataclass(frozen=True)
class MDRunFiles:
    """The files one MD run writes: the dump, LAMMPS' log, the thermo table and the status record."""

    #: ``dump.lammpstrj``: positions (and forces) every ``dump_every`` steps.
    dump: Path
    #: ``log.lammps``: LAMMPS' own log.
    log: Path
    #: ``thermo.csv``: one row per ``thermo_every`` steps.
    thermo: Path
    #: ``status.json``: the classification (stable / fail / crash), written last.
    status: Path

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, Path(getattr(self, field.name)))

    @classmethod
    def from_mapping(cls, files: Mapping[str, str | Path]) -> MDRunFiles:
        """From a mapping with the keys ``dump``, ``log``, ``thermo``, ``status`` (a rule's ``output``)."""
        names = [field.name for field in dataclasses.fields(cls)]
        missing = [name for name in names if name not in files]
        if missing:
            raise ValueError(f"MD output files lack {missing}; expected the keys {names}")
        return cls(**{name: Path(files[name]) for name in names})

    @classmethod
    def in_dir(cls, folder: str | Path) -> MDRunFiles:
        """The files under ``folder``, named as in a campaign run (:data:`gnnff_stability.paths.MD_FILES`)."""
        return cls(**{field.name: Path(folder) / Path(paths.MD_FILES[field.name]).name
                      for field in dataclasses.fields(cls)})

    def as_dict(self) -> dict[str, Path]:
        """``{"dump": ..., "log": ..., "thermo": ..., "status": ...}``."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
