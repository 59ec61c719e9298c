"""docs/configuration.md lists every setting, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from services.common.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`(ENCLUME_[A-Z0-9_]+)`", doc)) - {"ENCLUME_CONFIG_FILE"}
    settings = {f"ENCLUME_{name.upper()}" for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from docs/configuration.md"
    assert documented - settings == set(), "docs/configuration.md names unknown settings"
