"""Nebius IAM credentials for the cloud dialect (../shared/cloud-apis.md section 3.2).

Two sources, one interface (``token()`` -> the bearer token for the next call, ``invalidate()`` after an
UNAUTHENTICATED answer):

* ``StaticToken``: ``VMOPS_NEBIUS_IAM_TOKEN`` (e.g. from ``nebius iam get-access-token``); never renewed.
* ``ServiceAccountToken``: a service-account credentials file (``VMOPS_NEBIUS_CREDENTIALS_FILE``, the
  pysdk's ``credentials.json`` layout). It signs a JWT (RS256, ``kid`` in the JOSE header, ``iss`` = ``sub`` =
  the service account, ``aud`` = the token service, lifetime 60 s) and exchanges it for an IAM token through
  ``TokenExchangeService/Exchange``; the token is renewed at 90 % of its lifetime (the pysdk's
  ``lifetime_safe_fraction``), before it expires, by the first call that needs it (no background thread).

The clock is injected (``clock``), so the renewal timing is tested without sleeping. Private keys and
tokens never appear in a message: errors name the file and the field only.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from vmops.config import Secret
from vmops.errors import AuthError, UsageError

JWT_AUDIENCE = "token-service.iam.new.nebiuscloud.net"
JWT_LIFETIME_S = 60
#: renew when this fraction of the token's lifetime has passed (pysdk ``lifetime_safe_fraction``)
RENEW_FRACTION = 0.9
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
REQUESTED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


class TokenSource(Protocol):
    def token(self) -> str: ...

    def invalidate(self) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class ServiceAccountCredentials:
    """The subject credentials of a credentials file (``subject-credentials``)."""

    service_account_id: str
    public_key_id: str
    private_key_pem: Secret
    source: str  # the file, for messages


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def read_credentials_file(path: str) -> ServiceAccountCredentials:
    """Parse a Nebius service-account credentials file; a bad one is a clear configuration error."""
    p = Path(path).expanduser()
    hint = ("VMOPS_NEBIUS_CREDENTIALS_FILE must name the credentials.json of a service account "
            "(`nebius iam auth-public-key generate` writes one)")

    def bad(problem: str) -> UsageError:
        return UsageError(f"the Nebius credentials file {p} {problem}", provider="nebius", hint=hint)

    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise bad(f"cannot be read ({e.strerror or type(e).__name__})") from None
    except (ValueError, UnicodeDecodeError):
        raise bad("is not JSON") from None
    sc = data.get("subject-credentials") if isinstance(data, dict) else None
    if not isinstance(sc, dict):
        raise bad("has no 'subject-credentials' object")
    fields = {k: sc.get(k) for k in ("alg", "private-key", "kid", "iss", "sub")}
    missing = [k for k, v in fields.items() if not isinstance(v, str) or not v]
    if missing:
        raise bad(f"lacks {', '.join(repr(m) for m in missing)} in 'subject-credentials'")
    if sc.get("type") not in (None, "JWT"):
        raise bad("has a 'type' other than JWT")
    if fields["alg"] != "RS256":
        raise bad("names an algorithm other than RS256")
    if fields["iss"] != fields["sub"]:
        raise bad("has 'iss' different from 'sub' (both must be the service account id)")
    if "PRIVATE KEY-----" not in str(fields["private-key"]):
        raise bad("has no PEM private key in 'private-key'")
    return ServiceAccountCredentials(service_account_id=str(fields["iss"]), public_key_id=str(fields["kid"]),
                                     private_key_pem=Secret(str(fields["private-key"])), source=str(p))


def make_jwt(creds: ServiceAccountCredentials, now: float) -> str:
    """The signed JWT (RS256) that the token service exchanges for an IAM token."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        key = serialization.load_pem_private_key(creds.private_key_pem.reveal().encode(), password=None)
    except (ValueError, TypeError):
        raise UsageError(f"the private key in {creds.source} cannot be loaded (not an unencrypted PEM key)",
                         provider="nebius") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(f"the private key in {creds.source} is not an RSA key (RS256 needs one)", provider="nebius")
    header = {"alg": "RS256", "typ": "JWT", "kid": creds.public_key_id}
    iat = int(now)
    claims = {"iss": creds.service_account_id, "sub": creds.service_account_id, "aud": JWT_AUDIENCE,
              "iat": iat, "exp": iat + JWT_LIFETIME_S}
    signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(signature)


class StaticToken:
    def __init__(self, token: Secret, source: str) -> None:
        self._token = token
        self._source = source

    def token(self) -> str:
        return self._token.reveal()

    def invalidate(self) -> None:
        """A static token cannot be renewed; the caller reports the rejection."""

    def describe(self) -> str:
        return f"static IAM token {self._token.masked()} from {self._source}"


#: exchange(jwt) -> (access token, lifetime in seconds); raises vmops errors
Exchange = Callable[[str], "tuple[str, int]"]


class ServiceAccountToken:
    """An IAM token from a service account, renewed at ``RENEW_FRACTION`` of its lifetime."""

    def __init__(self, creds: ServiceAccountCredentials, exchange: Exchange,
                 clock: Callable[[], float] = time.time) -> None:
        self.creds = creds
        self._exchange = exchange
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Secret | None = None
        self._renew_at = 0.0
        self._expires_at = 0.0

    @property
    def renew_at(self) -> float:
        return self._renew_at

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._renew_at:
                access, lifetime = self._exchange(make_jwt(self.creds, now))
                if not access or lifetime <= 0:
                    raise AuthError("the token service answered without a usable token", provider="nebius")
                self._token = Secret(access)
                self._expires_at = now + lifetime
                self._renew_at = now + RENEW_FRACTION * lifetime
            return self._token.reveal()

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def describe(self) -> str:
        return (f"service account {self.creds.service_account_id} (key {self.creds.public_key_id}) "
                f"from {self.creds.source}")
