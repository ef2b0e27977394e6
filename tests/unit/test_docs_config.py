"""docs/configuration.md documents every setting."""

from __future__ import annotations

from pathlib import Path

from trailkeep.config import Limits, Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    names = [f"TRAILKEEP_{n.upper()}" for n in Settings.model_fields if n != "limits"]
    names += [f"TRAILKEEP_LIMIT_{n.upper()}" for n in Limits.model_fields]
    missing = [n for n in names if f"`{n}`" not in text]
    assert not missing, f"undocumented settings: {missing}"
