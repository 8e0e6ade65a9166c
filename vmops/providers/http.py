"""REST plumbing shared by the HTTP adapters: one httpx client, safe paths, transport-error mapping,
retries for idempotent calls. Provider-specific error bodies are mapped by the adapter's ``map_error``."""

from __future__ import annotations

import logging
import ssl
from datetime import datetime, timezone
from typing import Any, Callable, Mapping
from urllib.parse import quote

import httpx

from vmops.config import ProviderSettings, redact
from vmops.errors import (
    InvalidArgument,
    MalformedAnswer,
    NoAnswer,
    OutcomeUnknown,
    ProviderUnavailable,
    Unreachable,
    VmopsError,
)
from vmops.providers.base import Timing
from vmops.providers import protocol
from vmops.providers.silence import Silence
from vmops.providers.retry import DEADLINE_HINT, RetryAfter
from vmops.providers.wire import MAX_ID_LENGTH
from vmops.providers.tls import NotTransient, is_verify_failure, ssl_context, unsendable_key_error, verify_error

log = logging.getLogger("vmops.http")


def segment(value: str, what: str = "id") -> str:
    """One URL path segment, validated and percent-encoded, so ``../../x`` can never reach another endpoint.

    Slashes are refused outright rather than encoded: some servers decode ``%2F`` before routing, so an
    encoded ``<id>/restart`` could still reach another route. No provider's ids contain one.
    """
    if (not isinstance(value, str) or value.strip() == "" or value in (".", "..") or len(value) > MAX_ID_LENGTH
            or any(c in value for c in "/\\\r\n\x00")):
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:80] + f"... ({len(value)} characters)"
        raise InvalidArgument(f"{what} {shown!r} is not valid", hint="Pass the id as shown by `vm list`")
    return quote(value, safe="")


def parse_utc(value: Any) -> datetime | None:
    """A provider's ISO-8601 timestamp (``...Z`` or with an offset) as an aware UTC datetime; None if absent/bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
            return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def _no_tls() -> ssl.SSLContext:
    """The context for an http:// endpoint, which never uses TLS: verifying, with no CA certificates (so it
    fails closed should anything try TLS with it). httpx's default (``verify=True``) loads the whole CA
    bundle, about 80 ms per client at every `vm` start, for a context plain HTTP never touches."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class RestClient:
    """JSON over HTTP for one provider.

    ``map_error(response)`` turns a non-2xx, non-5xx, non-429 response into a typed VmopsError; it is
    the adapter's single place for provider error bodies.
    """

    def __init__(
        self,
        settings: ProviderSettings,
        timing: Timing,
        map_error: Callable[[httpx.Response], VmopsError],
        auth_scheme: str = "Bearer",
        auth: httpx.Auth | None = None,
        before_send: Callable[[str, str], None] | None = None,
        on_rate_limited: Callable[[str, float | None], None] | None = None,
    ) -> None:
        """``auth`` signs each request itself (Crusoe cloud) instead of a static Authorization header;
        ``before_send(method, path)`` runs before every attempt (a pacer); ``on_rate_limited(path,
        retry_after)`` hears every 429 (a pacer pushes its slots back)."""
        self.provider = settings.name
        self.settings = settings
        self.base_url = settings.url
        self.timing = timing
        self.map_error = map_error
        self._key_error = unsendable_key_error(settings)  # raised at the first request, never sent
        self._signer = auth
        self._before_send = before_send
        self._on_rate_limited = on_rate_limited
        self._auth = ("" if self._key_error or auth is not None
                      else f"{auth_scheme} {settings.api_key.reveal()}".strip())
        self.silence = Silence(settings.name, timing.deadline)
        self._client = httpx.Client(
            base_url=settings.url,
            timeout=httpx.Timeout(timing.request_timeout,
                                  connect=min(timing.connect_timeout, timing.request_timeout)),
            headers={"Accept": "application/json"},
            verify=ssl_context(settings) if settings.url.startswith("https://") else _no_tls(),
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one request and return the parsed JSON body of a 2xx answer.

        Idempotent calls (GET by default) are retried on transient errors with backoff; others raise at
        once: ProviderUnavailable when nothing can have happened (connection refused), OutcomeUnknown when
        the request may have reached the provider (connection dropped, read timeout).
        """
        if idempotent is None:
            idempotent = method.upper() == "GET"

        if self._key_error is not None:
            raise self._key_error

        def once() -> Any:
            return self._send(method, path, json=json, params=params, idempotent=idempotent)

        try:
            if not idempotent:
                return once()
            return protocol.reading(once, self.timing)
        except NotTransient as e:
            raise e.error from None

    def _send(self, method: str, path: str, *, json: Any, params: Mapping[str, Any] | None, idempotent: bool) -> Any:
        headers = {"Authorization": self._auth} if self._auth else {}
        if self._before_send is not None:
            self._before_send(method, path)
        if json is not None:
            headers["Content-Type"] = "application/json"
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s%s params=%s headers=%s", self.provider, method, self.base_url, path, params,
                      {k: ("****" if k.lower() == "authorization" else v) for k, v in headers.items()})
        try:
            resp = self.silence.around(
                lambda: self._client.request(method, path, json=json, params=params, headers=headers,
                                             **({"auth": self._signer} if self._signer is not None else {})),
                _no_answer)
        except httpx.ConnectError as e:
            if is_verify_failure(str(e)):
                raise NotTransient(verify_error(self.settings, self.base_url, _reason(e))) from None
            raise Unreachable(f"cannot connect to {self.base_url} ({_reason(e)})", provider=self.provider) from None
        except httpx.ConnectTimeout:
            raise Unreachable(f"connection to {self.base_url} timed out after {self.timing.connect_timeout:g} s",
                              provider=self.provider) from None
        except httpx.ReadTimeout:
            what = f"{method} {path.split('?')[0]}"
            if idempotent:
                raise NoAnswer(f"{what}: no answer within {self.timing.request_timeout:g} s",
                               provider=self.provider, hint=DEADLINE_HINT) from None
            raise OutcomeUnknown(f"{what}: no answer within {self.timing.request_timeout:g} s after the request "
                                 f"was sent; it may have taken effect", provider=self.provider) from None
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError) as e:
            what = f"{method} {path.split('?')[0]}"
            if idempotent:
                raise ProviderUnavailable(f"{what}: the connection failed before an answer ({_reason(e)})",
                                          provider=self.provider) from None
            raise OutcomeUnknown(f"{what}: the connection dropped after the request was sent; it may have taken effect",
                                 provider=self.provider) from None
        except httpx.HTTPError as e:
            raise ProviderUnavailable(f"request to {self.base_url} failed ({_reason(e)})", provider=self.provider) from None
        log.debug("%s %s %s -> HTTP %s", self.provider, method, path.split("?")[0], resp.status_code)
        if 200 <= resp.status_code < 300:
            try:
                return resp.json()
            except ValueError:  # not JSON at all, or cut short (UnicodeDecodeError is a ValueError too)
                ctype = resp.headers.get("content-type", "?").split(";")[0]
                raise MalformedAnswer(f"the answer to {method} {path.split('?')[0]} is not valid JSON "
                                      f"({ctype}, {len(resp.content)} bytes)", provider=self.provider) from None
        if resp.status_code == 429:
            if self._on_rate_limited is not None:
                self._on_rate_limited(path, _parse_retry_after(resp.headers.get("Retry-After")))
            raise RetryAfter(f"rate limited (HTTP 429) on {method} {path.split('?')[0]}", provider=self.provider,
                             retry_after=_parse_retry_after(resp.headers.get("Retry-After")))
        if resp.status_code >= 500:
            raise ProviderUnavailable(f"server error HTTP {resp.status_code} on {method} {path.split('?')[0]}",
                                      provider=self.provider)
        raise self.map_error(resp)


def _no_answer(e: BaseException) -> bool | None:
    """For ``Silence``: a timeout got no answer; a refused connection says nothing either way."""
    if isinstance(e, (httpx.ReadTimeout, httpx.ConnectTimeout)):
        return True
    return None


def _reason(e: Exception) -> str:
    """First line of a transport error, keys masked (some libraries quote the offending header value)."""
    text = redact(str(e) or type(e).__name__)
    return text.splitlines()[0][:200]
