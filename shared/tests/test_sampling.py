"""The training sample of users: all of them up to the limit, else a seeded, stable subset."""

from __future__ import annotations

from musicspace_shared.sampling import sample_ids


def test_up_to_the_limit_every_user_is_kept_in_order() -> None:
    assert sample_ids([5, 3, 9], 3) == [3, 5, 9]
    assert sample_ids([5, 3, 9], None) == [3, 5, 9]


def test_over_the_limit_the_same_users_give_the_same_sample() -> None:
    users = list(range(1000, 0, -1))
    first = sample_ids(users, 100)
    assert len(first) == 100 == len(set(first))
    assert first == sorted(first) and set(first) <= set(users)
    assert sample_ids(reversed(users), 100) == first  # input order does not matter
    assert sample_ids(users, 100, seed=8) != first
    assert max(first) - min(first) > 500  # spread over the ids, not the first ones
