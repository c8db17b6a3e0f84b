"""The README's configuration reference matches the config model."""

from tooling import reference


def test_config_reference_is_in_sync():
    text = reference.README.read_text()
    assert reference.section() in text, "README is stale: run `make reference`"


def test_readme_names_the_two_commands():
    text = reference.README.read_text()
    assert "make plan" in text and "make test" in text


def test_stage_graph_is_in_sync():
    text = reference.README.read_text()
    assert reference.stage_graph() in text, "README is stale: run `make reference`"


def test_outputs_table_lists_every_stack_output():
    from tests.conftest import run_stack

    text = reference.README.read_text()
    table = text[text.index("### Outputs"):text.index("Configuration errors are listed")]
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert listed == set(run_stack("dev", preview=True).outputs)
