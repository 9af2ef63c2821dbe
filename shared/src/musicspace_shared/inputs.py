"""Strict input every service shares: no coercion, no unknown fields, plain decimal ids.

`{"user_id": true}`, `"1"`, `1.0` are refused (not read as 1); a body field the route does
not take is refused by name with the fields it does take (and, through `elsewhere`, where that
field would be valid); a number in a path or query is plain decimal digits (`+1`, ` 1`,
`1_000` are refused, which Python's int() would accept).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,17})")


class StrictBody(BaseModel):
    """A request body (or a part of one): unknown fields are an error that names them."""

    model_config = ConfigDict(extra="forbid")
    # field -> where it is valid instead, e.g. {"max_per_artist": "m1 and m3 recommend take it"}
    elsewhere: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [key for key in data if key not in cls.model_fields]
            if unknown:
                named = "; ".join(
                    f"{key!r}: {cls.elsewhere[key]}" if key in cls.elsewhere else repr(key)
                    for key in unknown
                )
                raise PydanticCustomError(
                    "unknown_field",
                    "unknown field(s) {named}; this body takes: {allowed}",
                    {"named": named, "allowed": ", ".join(cls.model_fields)},
                )
        return data


def _decimal(value: Any) -> Any:
    """Path and query values arrive as text: only plain decimal digits become a number."""
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise PydanticCustomError(
                "decimal_digits", "must be a whole number in plain decimal digits, e.g. 42"
            )
        return int(value)
    return value


DecimalText = BeforeValidator(_decimal)
"""Put in a path or query parameter's Annotated[int, ...] (see ids.UserIdPath)."""

Limit = Annotated[int, Field(strict=True, ge=1, description="how many items to return")]
Flag = Annotated[bool, Field(strict=True)]
