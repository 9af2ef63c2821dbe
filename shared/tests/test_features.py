"""round_like_measured: predictions at the precision of the catalog's measured features."""

from __future__ import annotations

import numpy as np
import orjson

from musicspace_shared.features import FEATURES, round_like_measured


def test_rounds_to_three_significant_digits_and_three_decimals_for_tempo_and_loudness() -> None:
    raw = np.array(
        [
            [0.748123, 0.9999, 0.0653456, 2.3349e-05, 0.0, 1.0, 0.05839, 122.03649, -2.63449],
            [0.1, 0.5, 0.5, 0.00042, 1.234e-8, 0.33333, 0.3, 99.9999, -60.0],
        ]
    )
    rounded = round_like_measured(raw)
    assert rounded.shape == raw.shape
    # As the JSON a client reads: no binary noise in the last digits.
    assert orjson.dumps(rounded.tolist()).decode() == (
        "[[0.748,1.0,0.0653,0.0000233,0.0,1.0,0.0584,122.036,-2.634],"
        "[0.1,0.5,0.5,0.00042,1.23e-8,0.333,0.3,100.0,-60.0]]"
    )


def test_nan_stays_nan_and_values_move_less_than_their_last_digit() -> None:
    rng = np.random.default_rng(0)
    raw = rng.random((500, len(FEATURES))) * np.array([1] * 7 + [250, -60])
    raw[3, 2] = np.nan
    rounded = round_like_measured(raw)
    assert np.isnan(rounded[3, 2])
    unit, fixed = slice(0, 7), slice(7, 9)
    known = ~np.isnan(raw[:, unit])
    # Half a unit in the third significant digit, at most; half a thousandth for tempo/loudness.
    moved = np.abs(rounded[:, unit] - raw[:, unit])[known]
    assert np.all(moved <= 0.005 * np.abs(raw[:, unit])[known] + 1e-15)
    assert np.all(np.abs(rounded[:, fixed] - raw[:, fixed]) <= 0.0005 + 1e-9)
