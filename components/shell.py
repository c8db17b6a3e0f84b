"""Shell programs assembled from the scripts in components/: a script's `# uses: FILE` lines name
the helper files (relative to the script) that go in front of it, once each, in order."""

from __future__ import annotations

from pathlib import Path


def uses(script: Path) -> list[Path]:
    """The helpers a script names in its header (`# uses: ../jobs/s3.sh`), resolved."""
    found = []
    for line in script.read_text().splitlines()[1:]:
        if not line.startswith("#"):
            break
        if line.startswith("# uses:"):
            found += [(script.parent / name).resolve() for name in line.removeprefix("# uses:").split()]
    return found


def assemble(script: Path, before: tuple[Path, ...] = ()) -> str:
    """`before`, then the helpers the script uses, then the script itself."""
    parts = [*before, *(p for p in uses(script) if p not in before), script]
    return "\n".join(p.read_text() for p in parts)
