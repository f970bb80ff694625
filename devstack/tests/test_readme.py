"""The README is the contract with a new user: its configuration table must be current."""

from __future__ import annotations

import pytest
from reminder_devstack.config_reference import README, readme_with_reference

pytestmark = pytest.mark.unit


def test_configuration_table_matches_the_settings_classes() -> None:
    current = README.read_text()
    assert current == readme_with_reference(current), (
        "README.md configuration is out of date: "
        "uv run python -m reminder_devstack.config_reference --write"
    )


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "python3 dev.py up --demo" in text
    assert "bash scripts/test" in text
