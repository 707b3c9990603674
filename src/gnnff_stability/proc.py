"""The one way the library runs an external program: streamed to the log, and killed with its caller.

``nequip-train``, ``nequip-package``, ``nequip-compile`` and an HPC ``lmp`` all run through
:func:`run_streamed`; short queries whose output is parsed (``lmp -h``) through :func:`run_captured`. Every output line goes to a callback (by default the logger), the last lines are
kept for the error message, and a SIGTERM to this process (SLURM preemption, ``scancel``, Snakemake
stopping) is forwarded to the child, so a killed job leaves no orphan running on the node.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CommandError", "check_streamed", "cli", "cli_env", "run_captured", "run_streamed"]

logger = logging.getLogger(__name__)

_TAIL_LINES = 40


class CommandError(RuntimeError):
    """An external program exited with a non-zero status; the message holds its last output lines."""


def cli(name: str) -> str:
    """The console script ``name`` of this interpreter's environment (or ``name`` to find on PATH)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def cli_env(threads: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with the thread counts of a child set to ``threads``."""
    env = dict(os.environ)
    n = str(max(int(threads), 1))
    env.update(
        {
            "OMP_NUM_THREADS": n,
            "MKL_NUM_THREADS": n,
            "OPENBLAS_NUM_THREADS": n,
            "PYTHONUNBUFFERED": "1",
            "HYDRA_FULL_ERROR": "1",
        }
    )
    env.update(extra or {})
    return env


@contextmanager
def _forward_sigterm(proc: subprocess.Popen) -> Iterator[None]:
    """Terminate ``proc`` when this process gets SIGTERM (signal handlers work in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        proc.terminate()
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def run_streamed(
    cmd: Sequence[str],
    env: Mapping[str, str] | None = None,
    label: str | None = None,
    *,
    cwd: str | Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> tuple[int, list[str]]:
    """Run ``cmd`` to completion, passing each non-empty output line (stdout and stderr) to ``on_line``.

    Parameters
    ----------
    cmd
        Program and arguments.
    env
        Environment of the child (default: this process's).
    label
        Prefix of the logged lines (default: the program's file name).
    cwd
        Working directory of the child.
    on_line
        Called with every line (trailing newline removed); default: log it at INFO as ``[label] line``.

    Returns
    -------
    returncode, tail
        The exit status and the last 40 non-empty output lines.
    """
    label = label or Path(cmd[0]).name
    logger.info("running: %s", shlex.join(str(c) for c in cmd))
    if on_line is None:
        def on_line(line: str) -> None:
            logger.info("[%s] %s", label, line)

    tail: list[str] = []
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=None if env is None else dict(env), cwd=cwd, bufsize=1)
    with _forward_sigterm(proc):
        for line in proc.stdout or ():
            line = line.rstrip("\n")
            if line.strip():
                on_line(line)
                tail.append(line)
                del tail[:-_TAIL_LINES]
        rc = proc.wait()
    return rc, tail


def check_streamed(cmd: Sequence[str], env: Mapping[str, str] | None = None, label: str | None = None,
                   **kwargs) -> None:
    """:func:`run_streamed`, raising :class:`CommandError` with the output's tail on a non-zero exit."""
    label = label or Path(cmd[0]).name
    rc, tail = run_streamed(cmd, env, label, **kwargs)
    if rc != 0:
        raise CommandError(f"{label} failed with exit status {rc}; last output:\n" + "\n".join(tail))


def run_captured(cmd: Sequence[str], env: Mapping[str, str] | None = None, *, stdin: str | None = None,
                 timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run a short query to completion and return its exit status and captured text output.

    For programs whose output is parsed rather than logged (``lmp -h``, ``plugin list``). A non-zero
    exit status is returned, not raised (the caller knows what it means).

    Raises
    ------
    OSError
        The program cannot be started.
    CommandError
        It ran longer than ``timeout`` seconds (it is killed).
    """
    try:
        return subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=None if env is None else dict(env), check=False)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"{Path(str(cmd[0])).name} did not finish within {timeout:g} s") from exc
