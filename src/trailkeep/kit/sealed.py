"""The mark of an encrypted field in a stored event (privacy/sealing.py makes them).

A field stored encrypted is an object ``{"tk_enc": 1, "ct": ..., "cm": ..., "bi": ...}``
in place of its value. Readers that walk stored bodies (the full-text tokenizer, the
masking function, the subject counts) recognise it by this one test, so an envelope is
never indexed or shown as if it were data.
"""

from __future__ import annotations

from typing import Any

SEALED_MARK = "tk_enc"
SEALED_KEYS = frozenset({SEALED_MARK, "ct", "cm", "bi"})
ERASED = "[erased]"
SUBJECT_MEMBER = "subject"  # top-level {"id": subject id, "key": data key id}


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SEALED_MARK) == 1 and value.keys() == SEALED_KEYS
