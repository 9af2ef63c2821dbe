"""m2's content space kept on its model volume (M2/space/current.pkl, by
musicspace_shared.saved_state), under the key it was built for: the feature model's version and
the catalog's version. A replica that starts while both are unchanged reads it instead of
reading the catalog and building (issue 18); the space holds no user's data.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

from musicspace_m2.settings import Settings
from musicspace_m2.similar import ContentSpace
from musicspace_shared import saved_state

FORMAT = 2  # bump when ContentSpace or its candidate index change shape


def space_path(settings: Settings) -> Path:
    return settings.model_dir("M2") / "space" / "current.pkl"


def _key(key: tuple[Hashable, ...]) -> list[str]:
    return [str(part) for part in key]


def save(settings: Settings, key: tuple[Hashable, ...], space: ContentSpace) -> bool:
    header = {"key": _key(key), "tracks": len(space.track_ids)}
    return saved_state.save_logged(space_path(settings), header, space, version=FORMAT)


def load(settings: Settings, key: tuple[Hashable, ...]) -> ContentSpace | None:
    """The saved space if it was built for `key` (model version, catalog version)."""

    def why_not(header: dict[str, Any]) -> str | None:
        if header.get("key") != _key(key):
            return "built for another model or catalog version"
        return None

    space: ContentSpace | None = saved_state.load(space_path(settings), why_not, version=FORMAT)
    return space
