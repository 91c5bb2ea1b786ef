"""Optional API-key authentication: ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.

Keys are compared in constant time: both sides are hashed to equal-length digests
(so not even a key's length leaks) and every key is compared, without stopping at
the first match.
"""

# no ``from __future__ import annotations`` here: FastAPI must see the dependency's
# Annotated[..., Security(scheme)] parameters as objects, and the schemes are locals

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from biotag.serve.errors import ServiceError

API_KEY_HEADER = "X-API-Key"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyChecker:
    """Holds only the keys' digests."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [_digest(k) for k in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: str) -> bool:
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(candidate, digest)
        return matched


def api_key_dependency(checker: KeyChecker) -> Callable[..., None]:
    """A FastAPI dependency that answers 401 unless the request carries an accepted key.
    Declared with FastAPI's security schemes so that ``/openapi.json`` documents both ways."""
    header_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="an API key")
    bearer_scheme = HTTPBearer(auto_error=False, description="an API key as a bearer token")

    async def require_api_key(
        header_key: Annotated[str | None, Security(header_scheme)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    ) -> None:
        presented = header_key or (bearer.credentials if bearer else None)
        if presented is None:
            raise ServiceError(
                401,
                "unauthorized",
                f"an API key is required: send it in the {API_KEY_HEADER} header or as 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not checker.accepts(presented):
            raise ServiceError(401, "unauthorized", "the API key is not valid", headers={"WWW-Authenticate": "Bearer"})

    return require_api_key
