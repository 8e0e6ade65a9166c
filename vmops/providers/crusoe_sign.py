"""Crusoe's request signature, version 1.0 (../shared/cloud-apis.md §1.2), as an ``httpx.Auth``.

String to sign: ``<path>\\n<canonical query>\\n<METHOD>\\n<timestamp>\\n``; signature = HMAC-SHA256 keyed with
the base64url-decoded secret, base64url without padding; sent as ``Authorization: Bearer
1.0:<access key id>:<signature>`` with the timestamp in ``X-Crusoe-Timestamp``. The body is not signed.
The simulator verifies with the same functions (``verify``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timezone
from typing import Callable, Generator
from urllib.parse import quote_plus, unquote_plus

import httpx

TIMESTAMP_HEADER = "X-Crusoe-Timestamp"
VERSION = "1.0"


class SignatureError(ValueError):
    """A query that cannot be canonicalized, or a secret that is not base64url."""


def canonical_query(raw_query: str) -> str:
    """The canonical form of a raw query string: keys sorted bytewise, values in their order, form-encoded."""
    groups: dict[str, list[str]] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        if ";" in part:
            raise SignatureError("a query part contains ';'")
        key, _, value = part.partition("=")
        groups.setdefault(unquote_plus(key), []).append(unquote_plus(value))
    pairs = []
    for key in sorted(groups, key=lambda k: k.encode()):
        for value in groups[key]:
            pairs.append(f"{quote_plus(key, safe='')}={quote_plus(value, safe='')}")
    return "&".join(pairs)


def string_to_sign(path: str, raw_query: str, method: str, timestamp: str) -> str:
    return f"{path}\n{canonical_query(raw_query)}\n{method.upper()}\n{timestamp}\n"


def decode_secret(secret: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    except (ValueError, TypeError):
        raise SignatureError("the Crusoe secret key is not base64url text") from None


def signature(secret: str, path: str, raw_query: str, method: str, timestamp: str) -> str:
    message = string_to_sign(path, raw_query, method, timestamp).encode()
    digest = hmac.new(decode_secret(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization(key_id: str, secret: str, path: str, raw_query: str, method: str, timestamp: str) -> str:
    return f"Bearer {VERSION}:{key_id}:{signature(secret, path, raw_query, method, timestamp)}"


def utc_timestamp(now: datetime | None = None) -> str:
    """RFC 3339 with second precision and ``Z``, as the Go SDK sends it."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def verify(header: str, timestamp: str, path: str, raw_query: str, method: str,
           secret_for: Callable[[str], str | None]) -> str | None:
    """The access key id of a correctly signed request, else None (constant-time comparison)."""
    scheme, _, token = header.partition(" ")
    version, _, rest = token.partition(":")
    key_id, _, sig = rest.partition(":")
    if scheme != "Bearer" or version != VERSION or not key_id or not sig:
        return None
    secret = secret_for(key_id)
    if secret is None:
        return None
    try:
        expected = signature(secret, path, raw_query, method, timestamp)
    except SignatureError:
        return None
    return key_id if hmac.compare_digest(expected.encode(), sig.encode()) else None


class CrusoeSigner(httpx.Auth):
    """Signs every request just before it is sent (so a retried request gets a fresh timestamp)."""

    def __init__(self, key_id: str, secret: str, clock: Callable[[], datetime] | None = None) -> None:
        decode_secret(secret)  # refuse a bad secret before anything is sent
        self._key_id = key_id
        self._secret = secret
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        ts = utc_timestamp(self._clock())
        raw_query = request.url.query.decode("ascii") if isinstance(request.url.query, bytes) else str(request.url.query)
        request.headers[TIMESTAMP_HEADER] = ts
        request.headers["Authorization"] = authorization(self._key_id, self._secret, request.url.path, raw_query,
                                                         request.method, ts)
        yield request
