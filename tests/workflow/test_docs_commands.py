"""Every `snakemake ...` and `make ...` command in README.md and docs/*.md runs as a dry run.

Commands are read from fenced code blocks (with their `\\` continuations) and from inline code spans. Each distinct
command runs once in a scratch copy of the repository: `snakemake <args> -n`, `make -n <args>`. The `cp` commands
of the docs' code blocks (e.g. copying the SLURM profile into a site profile) run first, as a reader would.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gnnff_stability.config import load_schema

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
#: What a dry run of each command needs from the repository (the `slurm` profile link is recreated).
TREE = ("Snakefile", "workflow", "config", "scripts", "envs", "Makefile", "pyproject.toml")
#: Options that need a finished campaign, so they have no dry run (the report bundles existing results).
NEEDS_RESULTS = ("--report",)
#: Per-campaign results roots (`results/<campaign>/`): the docs name them; a tree without the `campaign`
#: key cannot plan those targets yet.
CAMPAIGN_ROOTS = "campaign" in load_schema()["properties"]


def _shell_lines(block: str) -> list[str]:
    lines = []
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        lines.append(" ".join(re.split(r"\s+#", line, maxsplit=1)[0].split()))
    return lines


def doc_commands(text: str) -> tuple[list[str], list[str]]:
    """(`snakemake` / `make` commands, `cp` commands) of a Markdown text."""
    commands, copies = [], []
    blocks = re.findall(r"^```[\w-]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    for block in blocks:
        for line in _shell_lines(block):
            if re.match(r"^(snakemake|make)(\s|$)", line):
                commands.append(line)
            elif line.startswith("cp "):
                copies.append(line)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    for span in re.findall(r"`([^`\n]+)`", prose):
        if re.match(r"^(snakemake|make)\s", span.strip()):
            commands.append(span.strip())
    return commands, copies


def _normalise(command: str) -> str:
    return " ".join(shlex.split(command))


def _collect() -> tuple[dict[str, list[str]], list[str]]:
    where: dict[str, list[str]] = {}
    copies: list[str] = []
    for doc in DOCS:
        commands, cps = doc_commands(doc.read_text())
        copies += cps
        for command in commands:
            where.setdefault(_normalise(command), []).append(doc.name)
    return where, copies


COMMANDS, COPIES = _collect()


def test_extraction():
    text = (
        "Run `make demo` or `snakemake -n`.\n\n```bash\n# comment\nsnakemake --profile slurm \\\n"
        "  --configfile config/paper.yaml   # why\ncp -r a b\nls\n```\n"
    )
    assert doc_commands(text) == (
        ["snakemake --profile slurm --configfile config/paper.yaml", "make demo", "snakemake -n"], ["cp -r a b"]
    )
    assert len(COMMANDS) >= 10 and any(c.startswith("snakemake --profile slurm") for c in COMMANDS)


def _dry_run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    words = shlex.split(command)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    while words and re.match(r"^\w+=", words[0]):  # VAR=value prefixes
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if words[0] == "make":
        args = ["make", "-n", *words[1:]]
    else:
        args = [str(BIN / "snakemake"), *words[1:], "-n"]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def _skip_reason(command: str) -> str | None:
    if any(option in shlex.split(command) for option in NEEDS_RESULTS):
        return "needs a finished campaign's results (no dry run exists)"
    if not CAMPAIGN_ROOTS and re.search(r"\bresults/\w+/", command) and "snakemake" in command:
        return "names a per-campaign results root (results/<campaign>/), which this tree does not have yet"
    return None


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory):
    """Every command's dry run, three at a time (Snakemake's start-up is mostly waiting)."""
    root = tmp_path_factory.mktemp("docs")
    for name in TREE:
        src = REPO / name
        (shutil.copytree(src, root / name, symlinks=True) if src.is_dir() else shutil.copy2(src, root / name))
    (root / "slurm").symlink_to("workflow/profiles/slurm")
    for copy in COPIES:
        subprocess.run(shlex.split(copy), cwd=root, check=True)
    runnable = [c for c in COMMANDS if _skip_reason(c) is None]
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(runnable, pool.map(lambda c: _dry_run(c, root), runnable)))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_doc_command_dry_runs(command, dry_runs):
    assert "..." not in command and not re.search(r"<\w[^>]*>", command), (
        f"placeholder in a documented command (in {COMMANDS[command]}): {command}"
    )
    reason = _skip_reason(command)
    if reason:
        pytest.skip(reason)
    proc = dry_runs[command]
    assert proc.returncode == 0, (
        f"`{command}` (in {', '.join(sorted(set(COMMANDS[command])))}) fails as a dry run:\n"
        f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )
