"""The README's configuration reference matches the config model."""

from tooling import reference


def test_config_reference_is_in_sync():
    text = reference.README.read_text()
    assert reference.section() in text, "README is stale: run `make reference`"


def test_readme_names_the_two_commands():
    text = reference.README.read_text()
    assert "make plan" in text and "make test" in text
