"""The chunk codec round-trips every float64 to the bit, and stays small on real-shaped data."""
from __future__ import annotations

import math
import random
import struct

from hypothesis import given, settings, strategies as st

from ishowd.store import codec


def bits(values):
    return [struct.pack("<d", v) for v in values]


SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, -1e308, 5e-324, -5e-324, 2.2250738585072014e-308,
           1e-300, 123456789.123456789, 0.1, 1 / 3, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1.7976931348623157e308]


def test_special_values_round_trip_exactly():
    ts = list(range(1_700_000_000, 1_700_000_000 + 10 * len(SPECIAL), 10))
    out_ts, (out,) = codec.decode(codec.encode(ts, [SPECIAL]))
    assert out_ts == ts
    assert bits(out) == bits(SPECIAL)


def test_nan_payload_survives():
    weird_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
    _, (out,) = codec.decode(codec.encode([1, 2], [[weird_nan, 1.0]]))
    assert bits(out) == bits([weird_nan, 1.0])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=-(2 ** 40), max_value=2 ** 40),
                          st.floats(allow_nan=True, allow_infinity=True)), max_size=200))
def test_round_trip_any_floats(pairs):
    pairs.sort(key=lambda p: p[0])
    ts = [p[0] for p in pairs]
    vals = [p[1] for p in pairs]
    out_ts, (out,) = codec.decode(codec.encode(ts, [vals]))
    assert out_ts == ts
    assert bits(out) == bits(vals)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.decimals(min_value=-10 ** 9, max_value=10 ** 9, places=3, allow_nan=False, allow_infinity=False), min_size=1, max_size=100),
       st.integers(min_value=1, max_value=5))
def test_round_trip_decimals_and_columns(decimals, ncols):
    vals = [float(d) for d in decimals]
    ts = list(range(len(vals)))
    cols = [vals[i:] + vals[:i] for i in range(ncols)]
    out_ts, out_cols = codec.decode(codec.encode(ts, cols))
    assert out_ts == ts
    assert [bits(c) for c in out_cols] == [bits(c) for c in cols]


def test_sensor_shaped_data_is_under_two_bytes_per_sample():
    rng = random.Random(7)
    ts = list(range(1_700_000_000, 1_700_003_600, 10))
    temp, series = 45.0, []
    for _ in ts:
        temp += rng.choice((-0.031, 0, 0, 0.031))
        series.append(round(temp, 3))
    blob = codec.encode(ts, [series])
    assert len(blob) / len(ts) < 2.0
    assert codec.decode(blob) == (ts, [series])


def test_corrupt_chunk_is_an_error_not_garbage():
    import zlib
    import pytest
    blob = codec.encode([1, 2, 3], [[1.0, 2.0, 3.0]])
    raw = zlib.decompress(blob)
    with pytest.raises((ValueError, IndexError)):
        codec.decode(zlib.compress(raw[:-5]))
