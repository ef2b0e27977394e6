"""Opaque pagination cursors.

A cursor is the keyset position of the last row served, bound to the tenant and the
filters it was made for, and signed (HMAC) so that clients cannot forge positions or
reuse a cursor with other filters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from trailkeep.errors import InvalidCursor
from trailkeep.kit.jsonutil import dumps, loads
from trailkeep.store.models import EventFilter, PageKey


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("cursor:" + secret).encode()).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:12]

    @staticmethod
    def _scope(flt: EventFilter) -> str:
        return hashlib.sha256(dumps(repr(flt))).hexdigest()[:16]

    def encode(self, flt: EventFilter, key: PageKey) -> str:
        payload = dumps([key.occurred_at, key.seq, self._scope(flt)])
        raw = self._mac(payload) + payload
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, flt: EventFilter, cursor: str) -> PageKey:
        try:
            if len(cursor) > 512:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            mac, payload = raw[:12], raw[12:]
            if not hmac.compare_digest(mac, self._mac(payload)):
                raise ValueError("bad signature")
            occurred_at, seq, scope = loads(payload)
        except (ValueError, TypeError):
            raise InvalidCursor("cursor is malformed or was not issued by this server") from None
        if scope != self._scope(flt):
            raise InvalidCursor("cursor was issued for other filters or another tenant")
        return PageKey(int(occurred_at), int(seq))
