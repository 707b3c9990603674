"""No chemistry is hard-wired outside a material's own definition: the HfO2 species appear as string
literals only in HfO2's definition files (its polymorph builders, the COMB potential, the SAMD23 reader,
the COMB relaxation, and the schema's default material block); everything else reads them from
``material`` (docs/materials.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: HfO2's own definition: the only files allowed to name its species in code.
HFO2_DEFINITION = {
    "src/gnnff_stability/data/hfo2.py",
    "src/gnnff_stability/data/comb.py",
    "src/gnnff_stability/data/samd23.py",
    "src/gnnff_stability/data/relax.py",
}
#: The words that name HfO2's chemistry: the symbols as words, and the formula fragment.
SPECIES_WORD = re.compile(r"\bHf\b|\bO\b|HfO")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def python_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal of a Python file that is not a docstring (f-string parts too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip]


_QUOTED = re.compile(r"\"([^\"\n]*)\"|'([^'\n]*)'")


def rule_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the quoted strings of a Snakemake file outside comments and triple-quoted blocks."""
    out = []
    in_doc = False
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if '"""' in line:  # a docstring line, or where one opens or closes
            in_doc ^= line.count('"""') % 2 == 1
            continue
        if in_doc:
            continue
        code = line.split("#", 1)[0]
        out += [(n, a or b) for a, b in _QUOTED.findall(code)]
    return out


def _files() -> list[Path]:
    files = [p for p in (ROOT / "src" / "gnnff_stability").rglob("*.py")]
    files += sorted((ROOT / "scripts").glob("*.py"))
    files += sorted((ROOT / "workflow" / "rules").glob("*.smk")) + [ROOT / "Snakefile"]
    return [p for p in files if p.relative_to(ROOT).as_posix() not in HFO2_DEFINITION]


def test_no_species_literal_outside_the_material_definitions():
    found = []
    for path in _files():
        literals = python_literals(path) if path.suffix == ".py" else rule_literals(path)
        found += [f"{path.relative_to(ROOT)}:{line}: {text!r}" for line, text in literals if SPECIES_WORD.search(text)]
    assert not found, "species literals outside HfO2's definition:\n" + "\n".join(found)


def test_templates_name_no_species():
    # the training templates get their type names from the material when rendered
    for path in (ROOT / "src" / "gnnff_stability" / "train" / "templates").glob("*.yaml"):
        code = [line.split("#", 1)[0] for line in path.read_text().splitlines()]
        hits = [line for line in code if SPECIES_WORD.search(line)]
        assert not hits, f"{path.name} names species: {hits}"


def test_the_detector_finds_what_it_must(tmp_path):
    # the scanner itself: a literal in code is found, a docstring and a comment are not
    src = tmp_path / "m.py"
    src.write_text('"""About HfO2 and Hf."""\n\n# Hf here\nX = ("Hf", "O")\nY = f"{1} O/Hf"\nZ = "Oxygen Hfx"\n')
    hits = [t for _, t in python_literals(src) if SPECIES_WORD.search(t)]
    assert hits == ["Hf", "O", " O/Hf"]
    smk = tmp_path / "r.smk"
    smk.write_text('# "Hf" in a comment\nrule a:\n    """Hf in a docstring"""\n    params: x="O"\n')
    assert [t for _, t in rule_literals(smk) if SPECIES_WORD.search(t)] == ["O"]


def _rule_blocks(path: Path) -> list[tuple[str, str]]:
    """(rule name, rule text) of every rule or checkpoint of a Snakemake file."""
    parts = re.split(r"(?m)^(?:rule|checkpoint) (\w+):\n", path.read_text())
    return list(zip(parts[1::2], parts[2::2], strict=True))


def test_every_rule_hands_its_script_the_material_it_reads():
    # a script that builds MaterialSettings from snakemake.params.material fails at run time without it
    missing = []
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for name, text in _rule_blocks(smk):
            script = re.search(r'script:\s*\n\s*"\.\./\.\./scripts/(\w+\.py)"', text)
            if script and "params.material" in (ROOT / "scripts" / script.group(1)).read_text():
                if "material=MATERIAL" not in text:
                    missing.append(f"{smk.name}: rule {name} runs {script.group(1)}")
    assert not missing, "rules without params.material:\n" + "\n".join(missing)
