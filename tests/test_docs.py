"""docs/methods.md is the project's methods document: every citation of it resolves."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ROOT / "docs" / "methods.md"
CITING = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted(ROOT.glob("studies/*")),
]
CITING += sorted(p for p in (ROOT / "src").rglob("*") if p.suffix in (".py", ".yaml", ".md"))
LABEL = re.compile(r"(?<![\w.])([AB])\.(\d+)(?:\s*[-–]\s*(?:[AB]\.)?(\d+))?(?![\w.])")
"""A section label such as A.2, or a range such as A.1-A.2 or B.4–B.9."""
RETIRED = "METHODS" + ".md"  # spelled apart, so this file does not mention it


def _headings() -> set[str]:
    """The labels of docs/methods.md's headings: "A", "A.1", ..., "B", "B.1", ..."""
    found = set()
    for line in METHODS.read_text(encoding="utf-8").splitlines():
        match = re.match(r"#+\s+([AB])(\.\d+)?[.\s]", line + " ")
        if match:
            found.add(match.group(1) + (match.group(2) or ""))
    return found


def _cited(text: str) -> set[str]:
    labels = set()
    for part, first, last in LABEL.findall(text):
        labels |= {f"{part}.{n}" for n in range(int(first), int(last or first) + 1)}
    labels |= set(re.findall(r"methods\.md part ([AB])\b", text))
    return labels


def test_the_methods_document_has_both_parts_and_cites_its_seeds():
    text = METHODS.read_text(encoding="utf-8")
    assert {"A", "B", *(f"A.{n}" for n in range(1, 5)), *(f"B.{n}" for n in range(1, 10))} <= (
        _headings()
    )
    assert "2601.17987" in text and "Chalmers" in text
    for field in ("chance_margin", "seed_spread", "stability_q", "prune_delta", "ellipse_sde"):
        assert f"`{field}`" in text, field


def test_every_section_cited_in_the_sources_and_readme_exists():
    headings = _headings()
    missing = {
        f"{path.relative_to(ROOT)}: {label}"
        for path in CITING
        if path != METHODS and path.is_file()
        for label in _cited(path.read_text(encoding="utf-8")) - headings
    }
    assert not missing, sorted(missing)


def test_a_missing_section_would_be_caught():
    assert _cited("see docs/methods.md A.1–A.3 and (B.7); docs/methods.md part B") == {
        "A.1",
        "A.2",
        "A.3",
        "B.7",
        "B",
    }
    assert "A.7" not in _headings()


def test_nothing_cites_the_retired_file():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    citing = []
    for name in listed:
        path = ROOT / name
        if path.is_file() and not path.is_symlink():
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            if RETIRED in text:
                citing.append(name)
    assert not citing, citing
