"""The README promises what the code does: its permissions table is the one the code prints."""

from __future__ import annotations

from pathlib import Path

from adapters.graph.permissions import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_permissions_table_is_the_one_the_code_prints() -> None:
    assert markdown_table() in README.read_text(encoding="utf-8"), (
        "README's permissions table drifted: paste the output of `python app.py permissions`"
    )


def test_the_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = text.split("```sh")[1:3]
    assert "app.py --dev" in blocks[0] and "bash tests/run" in blocks[1]
    assert text.index("app.py --dev") < text.index("bash tests/run") < text.index("## ")
