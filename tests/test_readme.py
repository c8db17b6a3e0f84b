"""The README is a landing page a newcomer reads in ten minutes; the reference lives in docs/, and
what is generated from the program (the configuration reference, the stage picture) is in sync."""

from __future__ import annotations

import re

import pytest

from tooling import graph, reference

ROOT = reference.ROOT
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_generated_blocks_are_in_sync():
    for path, blocks in reference.generated().items():
        text = path.read_text()
        for begin, _, new in blocks:
            assert new in text, f"{path.relative_to(ROOT)} is stale at {begin}: run `make reference`"


def test_the_configuration_reference_lives_in_docs_and_the_picture_in_the_readme():
    assert reference.BEGIN in reference.CONFIGURATION.read_text()
    assert reference.BEGIN not in reference.README.read_text()
    assert reference.GRAPH_BEGIN in reference.README.read_text()


def test_readme_is_a_landing_page_with_prerequisites_before_the_quick_start():
    text = reference.README.read_text()
    assert len(text.splitlines()) <= 250
    headings = re.findall(r"(?m)^## (.+)$", text)
    assert headings[:5] == ["The picture", "Prerequisites", "Quick start", "Verify", "Destroy"], headings
    checklist = text[text.index("## Prerequisites"):text.index("## Quick start")]
    for needed in ("AWS account", "Route53", "hosted zone", "domain you can delegate", "public DNS",
                   "`api.<domain>`", "`*.<domain>`", "Debian 12", "Ubuntu 24.04", "cgroup v2", "`ip`",
                   "curl 7.87", "Sizing", "ports", "MaxStartups", "Pulumi CLI", "PULUMI_CONFIG_PASSPHRASE"):
        assert needed in checklist, needed


def test_readme_keeps_the_two_commands_of_a_fresh_machine():
    quick = reference.README.read_text().split("## Quick start")[1]
    first_block = quick[quick.index("```sh"):quick.index("```", quick.index("```sh") + 5)]
    assert re.search(r"(?m)^make plan\b", first_block) and re.search(r"(?m)^make test\b", first_block)


def test_readme_quotes_what_the_makefile_says_while_it_builds_the_venv():
    said = re.search(r'echo "(creating venv/[^"]+)"', (ROOT / "Makefile").read_text()).group(1)
    assert " ".join(said.split()) in " ".join(reference.README.read_text().split())


def test_readme_quotes_the_count_make_plan_prints_for_dev():
    from tests.conftest import run_stack

    custom = sum(r.custom for r in run_stack("dev", preview=True).resources.values())
    assert f"Resources by type ({custom} to create):" in reference.README.read_text()


def test_no_secret_is_set_on_a_command_line():
    for path in [reference.README, *DOCS]:
        for line in path.read_text().splitlines():
            if "pulumi config set --secret" in line:
                command = line.split("#")[0]
                assert "<" in command or "|" in command or command.rstrip().endswith(("ageKey", "privateKey")), \
                    f"{path.name}: {line.strip()}"


def _anchors(text: str) -> set[str]:
    """GitHub's heading ids: lowercased, punctuation but '-' and '_' dropped, spaces to '-'."""
    found = set()
    for heading in re.findall(r"(?m)^#+ (.+)$", re.sub(r"(?ms)^```.*?^```", "", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


@pytest.mark.parametrize("path", [reference.README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_reaches_a_file_and_heading_in_the_repository(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # https://…
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name} links to {target}, which is not in the repository"
        if anchor:
            assert anchor in _anchors(linked.read_text()), f"{path.name}: no heading #{anchor} in {linked.name}"


def test_no_document_names_one_that_is_not_there():
    for path in [reference.README, *DOCS, ROOT / "tooling" / "graph.py"]:
        text = path.read_text()
        for name in re.findall(r"\b([A-Z][A-Z_]+\.md)\b", text):
            assert (ROOT / name).exists() or (ROOT / "docs" / name).exists(), f"{path.name} names {name}"
        assert "the architecture" not in text.lower(), path.name


def test_the_layer_table_lists_every_layer_once_in_stage_order():
    text = (ROOT / "docs" / "design.md").read_text()
    rows = [line for line in text.splitlines() if re.match(r"^\| \d ", line)]
    found = [(int(row.split()[1]), row.split("`")[1]) for row in rows]
    assert sorted(kind for _, kind in found) == sorted(graph.STAGES)
    assert all(stage == graph.STAGES[kind] for stage, kind in found), found
    assert [stage for stage, _ in found] == sorted(stage for stage, _ in found), found


def test_outputs_table_lists_every_stack_output():
    from tests.conftest import run_stack

    text = (ROOT / "docs" / "configuration.md").read_text()
    table = text[text.index("## Outputs"):text.index("Configuration errors are listed")]
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert listed == set(run_stack("dev", preview=True).outputs)


@pytest.mark.parametrize("doc,facts", [
    ("versions.md", ["## Upgrading from an earlier release", "| component | newest upstream known",
                     "why the pin is not that one"]),
    ("operations.md", ["within 60 days of expiry", "**At most two**"]),
    ("hosts.md", ["**curl 7.87 or later**", "cgroup v2", "`ip`", "MaxStartups"]),
    ("rebuild.md", ["`pulumi destroy --exclude-protected`", "backup.keepBucket"]),
    ("ci.md", ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "role-to-assume", "PREVIEW_RUNNER",
               "self-hosted runner", "public repositor"]),
])
def test_what_moved_into_docs_is_still_said(doc, facts):
    text = (ROOT / "docs" / doc).read_text()
    for fact in facts:
        assert fact in text, f"docs/{doc}: {fact}"


def test_the_versions_table_names_every_pinned_component():
    from tests.pins import VERSIONS

    text = (ROOT / "docs" / "versions.md").read_text()
    table = text[text.index("| component"):text.index("## Upgrading")]
    for name in ("k0s", "Cilium", "cert-manager", "Flux", "Gitea", "local-path-provisioner", "busybox"):
        assert f"| {name}" in table, name
    assert len(VERSIONS) == 9  # a new pin needs its row here
