"""`make stack STACK=<name>`: a new stack's file and its GitOps paths, ready for `make plan`.

Writes Pulumi.<name>.yaml (commented, documentation addresses, placeholders to edit),
gitops/clusters/<name> (what Flux reconciles for it) and gitops/infrastructure/overlays/<name>,
from the templates in tooling/templates. Never overwrites a file: exits 2 naming what exists.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


def targets(stack: str, project_dir: Path) -> dict[Path, Path]:
    """Template → file it becomes, for `stack`."""
    return {
        TEMPLATES / "Pulumi.stack.yaml": project_dir / f"Pulumi.{stack}.yaml",
        TEMPLATES / "gitops/clusters/kustomization.yaml": project_dir / "gitops/clusters" / stack / "kustomization.yaml",
        TEMPLATES / "gitops/overlays/kustomization.yaml":
            project_dir / "gitops/infrastructure/overlays" / stack / "kustomization.yaml",
    }


def scaffold(stack: str, project_dir: Path = ROOT) -> list[Path]:
    """Write the stack's files; raise ValueError (nothing written) for a bad name or existing files."""
    if not _NAME.match(stack):
        raise ValueError(f"stack name {stack!r}: use 1-40 lowercase letters, digits and '-' (it names a "
                         "node, a directory and a label)")
    plan = targets(stack, project_dir)
    existing = [str(path.relative_to(project_dir)) for path in plan.values() if path.exists()]
    if existing:
        raise ValueError(f"stack {stack!r} exists already ({', '.join(existing)}); nothing was written")
    for template, path in plan.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template.read_text()).substitute(stack=stack))
    return list(plan.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    try:
        written = scaffold(args.stack, args.project_dir)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(args.project_dir)}")
    print(f"\nNext: put your hosts, domain and e-mail into Pulumi.{args.stack}.yaml, then\n"
          f"  make plan STACK={args.stack}        # offline check\n"
          f"  pulumi stack init {args.stack} && pulumi up -s {args.stack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def example_run():
    """The program's preview on the stack `make stack` scaffolds (in a temporary project; its
    Flux path pointed at gitops/clusters/dev, which exists): what the README's picture and
    `make charts` read the program's layers and charts from."""
    import tempfile

    from tooling import offline, stackfile

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
        template = (TEMPLATES / "Pulumi.stack.yaml").read_text()
        (project / "Pulumi.example.yaml").write_text(Template(template).substitute(stack="example"))
        config, secret = stackfile.read("example", project)
    config["cluster-bootstrap:flux"] = '{"path": "clusters/dev"}'
    return offline.run("example", preview=True, config=config, secret_keys=secret)
