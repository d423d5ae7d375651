"""docs/SECURITY.md's role table says what sender.staff.actions.NEEDED enforces."""

from __future__ import annotations

import re
from pathlib import Path

from sender.staff.actions import NEEDED

SECURITY = Path(__file__).resolve().parents[2] / "docs" / "SECURITY.md"
ROW = re.compile(r"^\| `([^`]+)` \| (viewer|campaigner|admin|-) \|", re.MULTILINE)


def _section(text: str, title: str) -> str:
    start = text.index(f"### {title}\n")
    end = text.find("\n#", start + 1)
    return text[start : end if end != -1 else None]


def test_the_role_table_matches_needed_row_for_row() -> None:
    table = ROW.findall(_section(SECURITY.read_text(encoding="utf-8"), "Roles"))
    documented = dict(table)
    assert len(documented) == len(table), "an action is listed twice"
    enforced = {what.value: (role.value if role else "-") for what, role in NEEDED.items()}
    assert documented == enforced
