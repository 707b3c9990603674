"""Logging set-up shared by the Snakemake script entry points."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

__all__ = ["setup_script_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_script_logging(path: str | Path | None, level: int = logging.INFO) -> None:
    """Send the library's log records (and warnings) to a rule's log file.

    Parameters
    ----------
    path
        The rule's ``log:`` file, the only destination (Snakemake shows it for a failed job with
        ``--show-failed-logs``). ``None`` logs to standard error instead.
    level
        Logging level of the root logger.
    """
    handlers: list[logging.Handler]
    if path is None:
        handlers = [logging.StreamHandler(sys.stderr)]
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(path, mode="w")]
    logging.basicConfig(level=level, format=_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
