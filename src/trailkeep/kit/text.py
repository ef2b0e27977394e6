"""Text checks shared by every schema."""

from __future__ import annotations


def check_text(value: str) -> str:
    """Reject NUL characters and unpaired surrogates (they cannot be stored as UTF-8)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (unpaired surrogate)") from None
    return value
