"""RFC 8785 (JSON Canonicalization Scheme, JCS) bytes: what an event's Merkle leaf hashes.

``rfc8785`` (Trail of Bits, pure Python) is the reference but costs tens of µs per
event. orjson with OPT_SORT_KEYS is ~10x faster and, for most values, byte-identical
to JCS. ``canonical_json`` walks the value once and uses orjson only when every
difference between the two is ruled out; otherwise the reference decides (and raises
for what JCS cannot encode).

Where orjson 3.13 + OPT_SORT_KEYS and JCS agree, and where they do not
(tests/unit/test_canonical.py checks each claim against rfc8785):

- whitespace: both compact, no spaces, no trailing newline;
- literals and integers: identical for ``null``, ``true``, ``false`` and integers
  within ±(2**53-1); beyond that JCS has no exact form (rfc8785 raises), orjson
  prints the integer up to 64 bits;
- strings: identical for every Unicode scalar value. Both escape only ``"``, ``\\``
  and U+0000..U+001F, with ``\\b \\t \\n \\f \\r`` and lowercase ``\\u00xx`` otherwise;
  U+007F, U+2028/U+2029 and all else are raw UTF-8. Lone surrogates: both raise;
- floats: differ. orjson writes integral floats as ``1.0`` (JCS ``1``), ``-0.0``
  (JCS ``0``), uses exponents from 1e16 (``1e+16``; JCS ``10000000000000000`` up to
  1e21) and below 1e-5 (``1e-6``; JCS ``0.000001`` down to 1e-6);
- key order: differs. orjson sorts by code point (UTF-8 bytes), JCS by UTF-16 code
  unit. A character outside the BMP is a surrogate pair (0xD800..0xDFFF) in UTF-16,
  so it sorts below U+E000..U+FFFF in JCS but above them in orjson:
  ``{"\\ue000": 1, "\\U0001f600": 2}`` is ordered differently.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import rfc8785

__all__ = ["CanonicalizationError", "canonical_json", "orjson_matches_jcs"]

CanonicalizationError = rfc8785.CanonicalizationError

_SORTED = orjson.OPT_SORT_KEYS
_MAX_INT = 2**53 - 1  # JCS numbers are IEEE 754 doubles: integers beyond this are not exact
# orjson refuses nesting beyond 254 levels; stay well below it (deeper values fall back).
_MAX_DEPTH = 128
_ABOVE_BMP = "\U00010000"
_HIGH_BMP = re.compile("[\ue000-\uffff]")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value`` (dicts with str keys, lists, str, int, float, bool, None).

    Raises ``CanonicalizationError`` (a ValueError) for what JCS cannot encode: NaN and
    infinities, integers beyond ±(2**53-1), lone surrogates, non-str keys, other types
    (tuples pass, as arrays). Nesting near Python's recursion limit raises RecursionError.
    """
    if orjson_matches_jcs(value):
        try:
            return orjson.dumps(value, option=_SORTED)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate, a str-subclass key: the reference decides
    try:
        return rfc8785.dumps(value)
    except UnicodeEncodeError as exc:  # rfc8785 0.1.4 on a lone surrogate in a key
        raise CanonicalizationError("input contains non-UTF-8 codepoints") from exc


def orjson_matches_jcs(value: Any) -> bool:
    """Whether orjson (OPT_SORT_KEYS) writes ``value`` as JCS: the fast-path condition.

    True when ``value`` is built only of exact dict (str keys), list, str, bool, None
    and int within ±(2**53-1), at most 128 levels deep, and no dict has both a key
    character above the BMP and one in U+E000..U+FFFF. Strings may hold anything:
    lone surrogates make orjson raise, and ``canonical_json`` then defers to rfc8785.
    """
    try:
        return _orjson_is_jcs(value, 0)
    except TypeError:  # "".join over a dict whose keys are not all str
        return False


def _keys_sort_alike(obj: dict[str, Any]) -> bool:
    """Whether code-point order (orjson) equals UTF-16 code-unit order (JCS) for these keys.

    Two keys are ordered by their first differing character. Both orders agree unless
    one of those is above the BMP (a surrogate pair, 0xD800..0xDBFF first) and the other
    in U+E000..U+FFFF. So they agree unless this dict's keys hold both kinds (a lone key
    has no order).
    """
    if len(obj) < 2:
        return True
    keys = "".join(obj)
    return keys.isascii() or max(keys) < _ABOVE_BMP or _HIGH_BMP.search(keys) is None


def _orjson_is_jcs(value: Any, depth: int) -> bool:
    """One cheap walk: True when orjson's output of ``value`` is its JCS form.

    Only exact dict/list/str/int/bool/None qualify: floats format differently (see
    the module docstring), subclasses and other types may be encoded by orjson (enums,
    datetimes, dataclasses) where JCS has no form. Strings need no check.
    """
    if depth >= _MAX_DEPTH:
        return False
    kind = type(value)
    if kind is dict:
        if not _keys_sort_alike(value):
            return False
        items = value.values()
    elif kind is list:
        items = value
    else:
        items = (value,)  # a bare scalar: the same checks as an element
    for item in items:
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -_MAX_INT <= item <= _MAX_INT:
                continue
            return False
        if kind is dict or kind is list:
            if _orjson_is_jcs(item, depth + 1):
                continue
            return False
        return False
    return True
