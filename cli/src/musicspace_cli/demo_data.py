"""The demo catalog and playlists shipped with the project (see data/ATTRIBUTION.md)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_CATALOG = DATA_DIR / "catalog.csv.gz"
DEMO_PLAYLISTS = DATA_DIR / "playlists.csv.gz"
