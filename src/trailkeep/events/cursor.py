"""Opaque pagination cursors.

A cursor is the keyset position of the last row served, bound to the tenant and the
filters it was made for, and signed (HMAC) so that clients cannot forge positions or
reuse a cursor with other filters. It also carries the time the first page resolved
relative times against (``occurred>-24h``), so every page of a walk uses the same
window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from trailkeep.errors import InvalidCursor
from trailkeep.kit.jsonutil import dumps, loads
from trailkeep.query.filter import EventFilter
from trailkeep.store.models import PageKey


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("cursor:" + secret).encode()).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:12]

    @staticmethod
    def _scope(flt: EventFilter) -> str:
        return hashlib.sha256(dumps(repr(flt))).hexdigest()[:16]

    def encode(self, flt: EventFilter, key: PageKey, now_us: int = 0) -> str:
        payload = dumps([key.occurred_at, key.seq, self._scope(flt), now_us])
        raw = self._mac(payload) + payload
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _open(self, cursor: str) -> list[object]:
        try:
            if len(cursor) > 512:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            mac, payload = raw[:12], raw[12:]
            if not hmac.compare_digest(mac, self._mac(payload)):
                raise ValueError("bad signature")
            fields = loads(payload)
            if not isinstance(fields, list) or len(fields) not in (3, 4):
                raise ValueError("bad payload")
            return fields
        except (ValueError, TypeError):
            raise InvalidCursor("cursor is malformed or was not issued by this server") from None

    def pinned_now(self, cursor: str) -> int | None:
        """The time a walk's relative times were resolved against (None: not recorded)."""
        fields = self._open(cursor)
        return int(fields[3]) if len(fields) == 4 and fields[3] else None  # type: ignore[call-overload]

    def decode(self, flt: EventFilter, cursor: str) -> PageKey:
        occurred_at, seq, scope, *_ = self._open(cursor)
        if scope != self._scope(flt):
            raise InvalidCursor("cursor was issued for other filters or another tenant")
        return PageKey(int(occurred_at), int(seq))  # type: ignore[call-overload]
