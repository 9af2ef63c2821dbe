"""A/B arms: which strategy answers a user's /api/recommend, decided by a hash of the user id.

RECOMMEND_ARMS="blend:50,m3:25,m1:25" splits users 50/25/25 over three arms; an arm is named
after the strategy it serves: `blend` (the fusion of every model that fits the user, or the
single model RECOMMEND_BLEND_METHOD names), `m1`, `m2`, `m3` (that model alone) or `popular`
(the popular-and-new lists everyone without data gets). Shares are relative weights (they
need not add up to 100). A user's arm is a pure function of the salt, the split and the user
id: the same on every replica and after a restart, and it moves only when the split or
RECOMMEND_ARM_SALT changes (a new salt reshuffles every user, e.g. for a new experiment).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

STRATEGIES = ("blend", "m1", "m2", "m3", "popular")
BUCKETS = 10_000


@dataclass(frozen=True)
class Arm:
    name: str  # also the strategy it serves, and the arm in the recommendation id
    share: int


def parse_arms(spec: str) -> tuple[Arm, ...]:
    """ "blend:50,m3:25,m1:25" -> arms; ValueError naming what is wrong."""
    arms: list[Arm] = []
    for part in (p.strip() for p in spec.split(",")):
        name, sep, share = part.partition(":")
        name = name.strip()
        if not sep or name not in STRATEGIES or not share.strip().isdigit():
            raise ValueError(
                f"arm {part!r}: write <strategy>:<share>, strategy one of {', '.join(STRATEGIES)}"
                ", share a whole number (e.g. blend:50,m3:25,m1:25)"
            )
        if any(arm.name == name for arm in arms):
            raise ValueError(f"arm {name!r} is listed twice")
        arms.append(Arm(name, int(share)))
    if sum(arm.share for arm in arms) <= 0:
        raise ValueError("the arms' shares must add up to more than 0")
    return tuple(arms)


def bucket(user_id: int, salt: str) -> int:
    """The user's stable bucket in 0..BUCKETS-1 (sha256 of salt and id: uniform, unguessable
    without the salt, independent of Python's hash seed)."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(user_id: int, arms: tuple[Arm, ...], salt: str) -> Arm:
    """The arm of `user_id`: buckets are split over the arms in proportion to their shares."""
    total = sum(arm.share for arm in arms)
    point = bucket(user_id, salt) * total / BUCKETS
    edge = 0
    for arm in arms:
        edge += arm.share
        if point < edge:
            return arm
    return arms[-1]
