"""JWT bearer tokens: HS256 with a shared secret, or RS256 with keys from a JWKS.

Claims: ``tenant_id`` (name configurable) and ``roles`` (a list or a space-separated
string of admin, tenant_admin, writer, reader). ``exp`` is required.
"""

from __future__ import annotations

from typing import Any

import jwt
from jwt import PyJWKClient, PyJWKSet

from trailkeep.auth.principal import Principal, Role
from trailkeep.config import Settings
from trailkeep.errors import Unauthenticated, Unavailable
from trailkeep.kit.jsonutil import loads

_TIME_CLAIMS = ("exp", "nbf", "iat")


def _check_numeric_dates(claims: dict[str, Any]) -> None:
    """RFC 7519 4.1.4-6: ``exp``, ``nbf`` and ``iat`` are NumericDates, JSON numbers.

    PyJWT reads them with ``int()``, so ``"exp": "9999999999"`` (a string) or ``true``
    would pass its checks; a token that says its expiry in another type is refused.
    """
    for name in _TIME_CLAIMS:
        if name in claims:
            value = claims[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise Unauthenticated(
                    f"invalid token: claim {name!r} must be a NumericDate (a JSON number"
                    f" of seconds, RFC 7519), not {type(value).__name__} {str(value)[:40]!r}"
                )


class JwtVerifier:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._hs_secret = settings.jwt_hs256_secret
        self._jwks: PyJWKSet | None = None
        self._jwks_client: PyJWKClient | None = None
        if settings.jwt_jwks_file is not None:
            self._jwks = PyJWKSet.from_dict(loads(settings.jwt_jwks_file.read_bytes()))
        if settings.jwt_jwks_url:
            self._jwks_client = PyJWKClient(settings.jwt_jwks_url, cache_keys=True, timeout=5)

    @property
    def enabled(self) -> bool:
        return bool(self._hs_secret or self._jwks or self._jwks_client)

    def _key_for(self, token: str, header: dict[str, Any]) -> tuple[Any, str]:
        alg = header.get("alg")
        if alg == "HS256" and self._hs_secret:
            return self._hs_secret, "HS256"
        if alg == "RS256" and (self._jwks or self._jwks_client):
            kid = header.get("kid")
            if self._jwks is not None:
                for key in self._jwks.keys:
                    if kid is None or key.key_id == kid:
                        return key.key, "RS256"
            if self._jwks_client is not None:
                try:
                    return self._jwks_client.get_signing_key_from_jwt(token).key, "RS256"
                except jwt.PyJWKClientConnectionError as exc:
                    # Our key source is down: not the client's fault, so not a 401.
                    raise Unavailable(f"cannot fetch the JWKS to verify tokens: {exc}") from None
                except jwt.PyJWKClientError as exc:
                    raise Unauthenticated(f"no signing key for this token: {exc}") from None
            raise Unauthenticated("no signing key matches the token's kid")
        raise Unauthenticated(f"token algorithm {alg!r} is not accepted")

    def verify(self, token: str) -> Principal:
        if not self.enabled:
            raise Unauthenticated("JWT bearer tokens are not enabled on this server")
        try:
            header = jwt.get_unverified_header(token)
            key, alg = self._key_for(token, header)
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                options={"require": ["exp"], "verify_aud": self._settings.jwt_audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        _check_numeric_dates(claims)
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        raw_roles = claims.get(self._settings.jwt_roles_claim, [])
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()
        if not isinstance(raw_roles, list):
            raise Unauthenticated("the roles claim must be a list or a string")
        known = {r.value for r in Role}
        roles = frozenset(Role(r) for r in raw_roles if isinstance(r, str) and r in known)
        if not roles:
            raise Unauthenticated("token carries no known role")
        tenant = claims.get(self._settings.jwt_tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            tenant = None
        if Role.ADMIN not in roles and tenant is None:
            raise Unauthenticated("token carries no tenant claim")
        subject = str(claims.get("sub", "anonymous"))
        return Principal(
            subject=f"jwt:{subject}",
            tenant_id=tenant,
            roles=roles,
        )
