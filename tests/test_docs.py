"""The manual stays in step with the code: docs/cli.md against every command's --help, and the
README's set-up commands and links."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.cli.reference import command_reference, generated_part

ROOT = Path(__file__).resolve().parents[1]
CLI_PAGE = ROOT / "docs" / "cli.md"


def sections(reference: str) -> dict[str, str]:
    """``{"loralab train": section text, ...}``."""
    parts = re.split(r"^### (.+)$", reference, flags=re.M)[1:]
    return dict(zip(parts[::2], parts[1::2], strict=True))


def test_the_reference_in_docs_cli_is_the_generated_one():
    assert generated_part(CLI_PAGE) == command_reference(), (
        "docs/cli.md is out of step with the commands; run `make docs-cli`."
    )


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", list(sections(generated_part(CLI_PAGE))))
def test_every_documented_option_reads_the_same_in_live_help(name):
    section = sections(generated_part(CLI_PAGE))[name]
    words = name.split()[1:]
    result = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "1000", "TERMINAL_WIDTH": "1000"})
    assert result.exit_code == 0, result.output
    live = squash(result.output)
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows or "[OPTIONS]" not in section
    for row in rows:
        names, meaning = row[2:-2].split(" | ", 1)
        first = names.split(", ")[0].strip("`")
        assert first in live, f"{name}: {first} is documented but not in --help"
        meaning = re.sub(r" \[default: .*\]$| \(required\)$", "", meaning.replace("\\|", "|"))
        assert squash(meaning) in live, f"{name} {first}: the help differs from docs/cli.md"


def test_every_command_has_a_section():
    documented = set(sections(generated_part(CLI_PAGE)))
    for command in ("train", "evaluate", "predict", "compare", "sweep", "serve", "data inspect", "ui"):
        assert f"loralab {command}" in documented


def test_the_ui_has_its_own_page_linked_from_the_manual():
    page = ROOT / "docs" / "ui" / "README.md"
    assert page.read_text().startswith("# `loralab ui`")
    assert "](ui/README.md)" in CLI_PAGE.read_text()
    assert "](docs/ui/README.md)" in (ROOT / "README.md").read_text()
    images = re.findall(r"\]\(([^)#:]+\.png)\)", page.read_text())
    assert images
    for image in images:
        assert (page.parent / image).exists(), f"docs/ui/README.md shows missing {image}"


def test_readme_starts_with_the_two_set_up_commands_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    fence = readme.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert fence[0].startswith("make demo") and fence[1].startswith("make test")
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
