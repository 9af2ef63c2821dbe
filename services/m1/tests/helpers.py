"""Helpers for the m1 tests."""

from __future__ import annotations

from musicspace_m1.settings import Settings
from tests.plugin import settings_maker

# The catalog check runs often so tests that add tracks see them without waiting.
make_settings = settings_maker(Settings, catalog_check_s=0.2)
