"""JSON reads build their Python values in the native layer: the result must be exactly what
``json.loads`` gives, and what that reader is not sure of must go to ``json.loads`` itself.

``_native._json_messages(texts)`` is what a JSON read does with the core's array texts; it
also says how many texts were left to ``json.loads``, so these tests see which path ran.
"""

from __future__ import annotations

import json
import math
import random
import struct
import sys
from typing import Any

import pytest

import durable_streams_client as ds
from durable_streams_client import _native


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (``1``, ``1.0`` and ``True`` differ), floats
    bit for bit (``-0.0`` is not ``0.0``), and dict keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def native(*texts: str) -> tuple[list[Any], int]:
    return _native._json_messages(list(texts))


def expected(*texts: str) -> list[Any]:
    out: list[Any] = []
    for t in texts:
        out.extend(json.loads(t))
    return out


INT32S = [random.Random(i).randint(-(2**31), 2**31 - 1) for i in range(97)]

# Arrays the native reader must build itself (no text left to json.loads).
BUILT = [
    "[]",
    " [ ] ",
    "[0, -0, 1, -1, 42, 9223372036854775807, -9223372036854775807, 9999999999999999999]",
    "[1234567890123456789, -999999999999999999, 18446744073709551615, -18446744073709551615]",
    "[-9223372036854775808, -9223372036854775809, 10000000000000000000]",
    "[0.0, -0.0, 1e5, 1E+5, 1e-5, 2.5e-3, -1.5E3, 0.1, 100.0, 1e400, -1e400, 4.9e-324]",
    "[2.2250738585072011e-308, 123456789012345678901234567890.5, 1.7976931348623157e308]",
    "[9007199254740993.0, 0.30000000000000004, 5e-324, 1e-400]",
    '[true, false, null, "", "a", "héllo", "日本語", "emoji 😀", "tab\\there"]',
    '["\\"", "\\\\", "\\/", "\\b\\f\\n\\r\\t", "\\u0000", "\\u00e9\\u00E9", "\\ud83d\\ude00"]',
    '["\\u2028\\u2029", "x\\u0041y", "\\uffff", "\\ud800\\udc00", "\\udbff\\udfff"]',
    '[{}, {"a": 1}, {"a": 1, "a": 2}, {"b": [1, {"c": null}]}, [[[]]], [{"": ""}]]',
    '[{"k\\u00e9y": 1, "k\\"q": 2, "x": {"x": {"x": 3}}}]',
    '[{"' + "long" * 30 + '": 1, "' + "long" * 30 + '": 2}]',
    "[" + ",".join(f'{{"key{i}": {i}}}' for i in range(600)) + "]",
    '\n\t[ {"i" :1 ,"t" : "a"} ,\r\n {"i":2,"t":"b"} ]\n ',
    "[" + "[" * 63 + "1" + "]" * 63 + "]",
    # Integers of 32 bits only (the core reads those texts), long enough for its 8-byte path,
    # and with one that is not (-0, 2^31): the reader's path, the same ints.
    "[" + ",".join(str(INT32S[i % 97] >> (i % 31)) for i in range(5000)) + "]",
    "[" + ",".join(["1234567", "-9999999", "0", "12345678", "-2147483648", "2147483647"] * 9) + "]",
    "[" + ",".join(["1234567"] * 20 + ["-0"] + ["7654321"] * 20) + "]",
    "[" + ",".join(["1234567"] * 20 + ["2147483648"] + ["7654321"] * 20) + "]",
    "[ 1 ,\n2\t, 3 ]",
    # As json.dumps writes arrays: a space after each comma (and long enough for the 8-byte path).
    "[" + ", ".join(str(i * 7919) for i in range(300)) + "]",
    "[1,\n  2,\n  3,\n  4,\n  5,\n  6,\n  7,\n  8]",
    '["' + "x" * 10_000 + '", "' + "é" * 5_000 + '"]',
]


@pytest.mark.parametrize("text", BUILT)
def test_built_natively_as_json_loads_builds_it(text: str) -> None:
    got, given_up = native(text)
    assert given_up == 0
    assert same(got, expected(text)), text[:200]


# Arrays json.loads reads but the native reader leaves to it (same result either way).
LEFT = [
    "[NaN]",
    "[Infinity, -Infinity]",
    '["\\ud800"]',
    '["\\udc00 alone"]',
    '["\\ud800\\u0041"]',
    '[{"\\udfff": 1}]',
    "[123456789012345678901]",
    "[18446744073709551616]",
    "[-18446744073709551616]",
    "[" + "[" * 65 + "1" + "]" * 65 + "]",
]


@pytest.mark.parametrize("text", LEFT)
def test_left_to_json_loads_when_unsure(text: str) -> None:
    got, given_up = native(text)
    assert given_up == 1
    assert same(got, expected(text))


# Texts json.loads refuses: the same error, from json.loads itself.
REFUSED = [
    "[1,]",
    "[01]",
    "[1.]",
    "[1e]",
    "[.5]",
    "[+1]",
    "[-]",
    '["a\tb"]',
    '["\\x"]',
    '["\\u12"]',
    '["open]',
    "[tru]",
    '[{"a" 1}]',
    "[{1: 2}]",
    '[{"a": 1,}]',
    "[1] x",
    "[1][2]",
    "",
]


@pytest.mark.parametrize("text", REFUSED)
def test_refused_with_json_loads_own_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        native(text)
    assert str(got.value) == str(want.value)


def test_not_an_array_is_reported() -> None:
    with pytest.raises(TypeError, match="not a JSON array"):
        native('{"a": 1}')


def test_a_text_left_to_json_loads_keeps_its_place_among_the_others() -> None:
    texts = ['[{"i": 0}, {"i": 1}]', "[2, NaN, 3]", '[{"i": 4}]', "[]", '["\\ud800", 5]']
    got, given_up = native(*texts)
    assert given_up == 2
    assert same(got[:3], expected(*texts)[:3])
    assert math.isnan(got[3])
    assert got[4:6] == [3, {"i": 4}]
    assert got[6:] == ["\ud800", 5]


def test_keys_of_a_read_are_shared_and_not_interned() -> None:
    got, _ = native('[{"type": 1, "user": 2}, {"type": 3, "user": 4}]', '[{"type": 5}]')
    keys = [next(iter(d)) for d in got]
    assert keys == ["type", "type", "type"]
    assert keys[0] is keys[1] is keys[2]
    assert got[0]["type"] == 1
    assert got[2]["type"] == 5
    # Keys that are data (one per message) must not be interned: CPython 3.12 before 3.12.6
    # keeps every interned string for the life of the process. Had the read interned a key,
    # sys.intern of an equal string made here would return the read's own object.
    names = [f"k-{random.getrandbits(64):x}-{i}" for i in range(3)]
    got, _ = native("[" + ", ".join(f'{{"{n}": {i}}}' for i, n in enumerate(names)) + "]")
    for i, n in enumerate(names):
        key = next(iter(got[i]))
        assert key == n
        assert sys.intern("".join(list(n))) is not key


def test_short_string_values_are_shared_and_each_is_still_its_own_text() -> None:
    # Short string values come from a per-read cache: a repeated value is one str; many
    # distinct ones (more than the cache holds, colliding and replacing each other, some
    # differing only in one byte, in the zero padding or in length) each keep their text.
    rng = random.Random(2026_12_07)
    alphabet = 'ab\x00é日😀\\"\n'
    distinct = sorted(
        {"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 14))) for _ in range(6_000)}
        | {"x" * n for n in range(30)}
        | {"x" * 23 + c for c in "xyz"}
        | {"a\x00", "a", "a\x00\x00"}
    )
    values = [rng.choice(distinct) for _ in range(40_000)]
    text = json.dumps(values, ensure_ascii=False)
    got, given_up = native(text, json.dumps(values[:50]))
    assert given_up == 0
    assert got == values + values[:50]
    assert all(type(v) is str for v in got)
    got, _ = native('[{"t": "bench.event"}, {"t": "bench.event"}]', '["bench.event"]')
    assert got[0]["t"] is got[1]["t"] is got[2]
    assert got[2] == "bench.event"


def random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(10 if depth < 4 else 7)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(10**19), 10**19)
    if kind == 2:
        bits = rng.getrandbits(64)
        x: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
        return x if math.isfinite(x) else rng.random()
    if kind == 3:
        return rng.uniform(-1e6, 1e6)
    if kind in (4, 5, 6):
        alphabet = 'ab "\\/\b\f\n\r\t\x00\x1f\x7fé日😀\u2028'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    if kind in (7, 8):
        keys = ["i", "type", "user", "p", "é", 'q"', "k\n", ""]
        return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


def test_generated_documents_match_json_loads() -> None:
    rng = random.Random(20261206)
    for n in range(3_000):
        items = [random_value(rng, 0) for _ in range(rng.randrange(1, 6))]
        text = json.dumps(
            items,
            ensure_ascii=n % 2 == 0,
            indent=None if n % 3 else 1,
            separators=(",", ":") if n % 5 == 0 else None,
        )
        got, given_up = native(text)
        assert given_up == 0, text
        assert same(got, json.loads(text)), text


def test_decimal_texts_round_as_python_float_does() -> None:
    rng = random.Random(7)
    texts = []
    for _ in range(5_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 40)))
        lead = str(rng.randrange(1, 10))
        texts.append(f"{rng.choice(['', '-'])}{lead}.{digits}e{rng.randint(-330, 310)}")
    text = "[" + ",".join(texts) + "]"
    got, given_up = native(text)
    assert given_up == 0
    assert same(got, json.loads(text))


def test_a_read_hands_out_the_values(url: str) -> None:
    handle = ds.DurableStream(url)
    handle.create(content_type="application/json")
    text = 'line\nnext "quoted" é😀'
    messages: list[Any] = [{"i": 1, "text": text}, [1.5, -2.5e-300, None], "s", 7]
    for m in messages:
        handle.append_json(m)
    with handle.stream(live=False) as res:
        assert same(res.read_json(), messages)
    with handle.stream(live=False) as res:
        batches = [m for b in res.iter_json_batches() for m in b.data]
    assert same(batches, messages)
