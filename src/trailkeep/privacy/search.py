"""Exact search over sealed fields, through their blind index.

``actor.email:ada@example.com`` cannot compare plaintext when ``actor.email`` is
stored sealed; it compares the field's blind index (privacy/sealing.py) with the blind
index of the value searched for, computed here with the tenant's index key. So only
exact values can be searched (no prefix, no IP range); free-text words never match a
sealed field (the full-text index skips them). docs/privacy.md lists what can be
searched.
"""

from __future__ import annotations

from collections.abc import Sequence

from trailkeep.errors import BadRequest
from trailkeep.kit.query_ast import METADATA_PREFIX, IpMatch, Term, TextMatch, TextValue
from trailkeep.privacy.sealing import blind_index
from trailkeep.privacy.settings import Policy

BLIND_SUFFIX = ".bi"
_FIELD_PATHS = {"actor.name": ("actor", "name"), "actor.email": ("actor", "email")}
_IP_PATH = ("context", "ip_address")


def _segments(term: TextMatch) -> tuple[str, ...] | None:
    if term.field in _FIELD_PATHS:
        return _FIELD_PATHS[term.field]
    if term.field.startswith(METADATA_PREFIX):
        return ("metadata", *term.field[len(METADATA_PREFIX) :].split("."))
    return None


def _exact(pattern: str, values: Sequence[str], index_key: bytes) -> tuple[TextValue, ...]:
    return tuple(TextValue(blind_index(index_key, pattern, v)) for v in values)


def _refuse(field: str, what: str) -> BadRequest:
    return BadRequest(
        f"'{field}' is stored encrypted for this tenant: only exact values can be searched"
        f" ({what} cannot); docs/privacy.md",
        details={"field": field},
    )


def blind_terms(terms: Sequence[Term], policy: Policy, index_key: bytes) -> list[Term]:
    """``terms`` with every term on a sealed field turned into a blind-index match."""
    sealed = set(policy.encrypt)
    out: list[Term] = []
    for term in terms:
        if isinstance(term, TextMatch) and (segments := _segments(term)) in sealed:
            assert segments is not None
            if any(v.prefix for v in term.values):
                raise _refuse(term.field, "a prefix with '*'")
            pattern = ".".join(segments)
            values = _exact(pattern, [v.text for v in term.values], index_key)
            out.append(TextMatch(pattern + BLIND_SUFFIX, values, term.negated))
        elif isinstance(term, IpMatch) and _IP_PATH in sealed:
            single = [n for n in term.networks if n.num_addresses == 1]
            if len(single) != len(term.networks):
                raise _refuse("ip", "an address range")
            pattern = ".".join(_IP_PATH)
            addresses = [str(n.network_address) for n in single]
            values = _exact(pattern, addresses, index_key)
            out.append(TextMatch(pattern + BLIND_SUFFIX, values, term.negated))
        else:
            out.append(term)
    return out
