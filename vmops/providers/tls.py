"""Transport security shared by the adapters: which CA certificates to trust, the typed error for a
certificate that does not verify, and the check that a key can be sent at all.

A certificate failure is not transient (retrying cannot fix it), so adapters raise it wrapped in
``NotTransient`` inside their retry loops and unwrap it outside.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from vmops.config import ProviderSettings
from vmops.errors import AuthError, ProviderUnavailable, UsageError, VmopsError

_VERIFY_FAILED = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "Ssl handshake failed",
                  "TSI_PROTOCOL_FAILURE", "self-signed certificate", "unable to get local issuer certificate")


class NotTransient(Exception):
    """Carries an error that a retry loop must not retry."""

    def __init__(self, error: VmopsError) -> None:
        self.error = error
        super().__init__(str(error))


def ca_hint(settings: ProviderSettings) -> str:
    var = f"VMOPS_{settings.name.upper()}_CA_BUNDLE"
    if settings.ca_bundle:
        return (f"vmops trusts only the CA certificates in {settings.ca_bundle} for {settings.name} "
                f"(set by {var}, VMOPS_CA_BUNDLE or ca_bundle); check that it holds the CA that signed the "
                "endpoint's certificate and that the endpoint is the one you meant")
    return (f"If the endpoint uses a private or self-signed CA, point VMOPS_CA_BUNDLE or {var} (or ca_bundle "
            "in config.toml) at a PEM file with that CA's certificate")


def is_verify_failure(text: str) -> bool:
    return any(s.lower() in text.lower() for s in _VERIFY_FAILED)


def verify_error(settings: ProviderSettings, endpoint: str, reason: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"the TLS connection to {endpoint} failed: its certificate could not be verified "
                               f"({reason})", provider=settings.name, hint=ca_hint(settings))


def read_ca_bundle(settings: ProviderSettings) -> bytes | None:
    """The configured CA bundle's bytes (None: use the system's trust store)."""
    if not settings.ca_bundle:
        return None
    path = Path(settings.ca_bundle)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"the CA bundle {path} cannot be read ({e.strerror or e})", provider=settings.name,
                         hint="Fix VMOPS_CA_BUNDLE / ca_bundle to name a PEM file of CA certificates") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise UsageError(f"the CA bundle {path} holds no PEM certificate", provider=settings.name,
                         hint="Fix VMOPS_CA_BUNDLE / ca_bundle to name a PEM file of CA certificates")
    return data


def ssl_context(settings: ProviderSettings) -> ssl.SSLContext | bool:
    """What httpx's ``verify=`` gets: the system trust store, or only the configured CA bundle."""
    data = read_ca_bundle(settings)
    if data is None:
        return True
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cadata=data.decode("ascii", errors="replace"))
    return ctx


def unsendable_key_error(settings: ProviderSettings) -> AuthError | None:
    """An error when the configured key cannot go in a header (a newline, a non-ASCII character):
    raised before sending, naming where the key came from but never the key."""
    if settings.api_key.sendable():
        return None
    source = settings.sources.get("api_key", "the configuration")
    return AuthError(f"the API key (from {source}) contains characters that cannot be sent in a request header "
                     "(a line break, control or non-ASCII character)", provider=settings.name,
                     hint="Fix the key: it must be a single line of printable ASCII")
