"""RFC 7396 JSON merge patch on both engines (MariaDB JSON_MERGE_PATCH, SQLite json_patch)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


def merge_patch(target: Any, patch: Any) -> Any:
    """The Python reference of RFC 7396 section 2."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def merge_patch_expr(
    column: sa.ColumnElement[Any], patch: sa.ColumnElement[Any] | str, dialect: Dialect
) -> sa.ColumnElement[Any]:
    """SQL expression for merge_patch(column, patch); a NULL column counts as {}.

    `patch` is a JSON text (bind parameter or column). SQLite's json_patch and MariaDB's
    JSON_MERGE_PATCH both implement RFC 7396; COALESCE keeps a NULL target from nulling the result.
    """
    patch_expr = sa.literal(patch) if isinstance(patch, str) else patch
    target = sa.func.coalesce(column, sa.literal("{}"))
    if dialect.name == "sqlite":
        return sa.func.json_patch(target, patch_expr)
    return sa.func.json_merge_patch(target, patch_expr)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
