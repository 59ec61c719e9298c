"""docs/configuration.md lists every setting under its section, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from services.common.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(ENCLUME_[A-Z0-9_]+)` \| `([a-z_]+)\.([a-z_]+)` \|", re.MULTILINE)


def documented_settings() -> dict[str, tuple[str, str]]:
    """ENCLUME_ variable -> (section, field), as the tables of docs/configuration.md say."""
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text()
    return {var: (section, field) for var, section, field in ROW.findall(doc)}


def settings_in_code() -> dict[str, tuple[str, str]]:
    """ENCLUME_ variable -> (section, field), as the settings classes read them."""
    found = {}
    for section, info in Settings.model_fields.items():
        for field, field_info in info.annotation.model_fields.items():  # type: ignore[union-attr]
            found[str(field_info.validation_alias)] = (section, field)
    return found


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text()
    mentioned = set(re.findall(r"`(ENCLUME_[A-Z0-9_]+)`", doc)) - {"ENCLUME_CONFIG_FILE"}
    code = settings_in_code()
    documented = documented_settings()
    assert set(code) - set(documented) == set(), "settings missing from docs/configuration.md"
    assert mentioned - set(code) == set(), "docs/configuration.md names unknown settings"
    wrong = {var: (where, code[var]) for var, where in documented.items() if code[var] != where}
    assert wrong == {}, "docs/configuration.md gives these variables another section.field"


def test_each_section_table_is_under_its_own_heading() -> None:
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text()
    for heading_section, table in re.findall(r"^## `([a-z_]+)`[^\n]*\n\n((?:\|[^\n]*\n)+)",
                                             doc, re.MULTILINE):
        assert {section for _, section, _ in ROW.findall(table)} == {heading_section}
