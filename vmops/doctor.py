"""`vm doctor`'s core: per provider, which dialect and endpoint vmops uses, which credential from where (masked),
the clock skew where requests are signed with the time (Crusoe cloud), the settings an adapter discovers when they
are not configured (Nebius cloud: subnet and image family) with where each came from, and the result of one cheap
authenticated call with a hint when it fails. Returns dataclasses; front ends render them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Sequence

from vmops.config import Config, redact
from vmops.errors import INTERNAL_EXIT, PartialFailure, VmopsError
from vmops.providers import get_provider, timing_for
from vmops.providers.base import Resolved, Timing

#: a clock further off than this makes signed requests fail at providers with a freshness window
SKEW_WARNING_S = 60.0


@dataclass(frozen=True)
class ProviderCheck:
    provider: str
    dialect: str
    dialect_source: str  # "env" / "file" / "default"
    endpoint: str
    credential: str  # masked
    credential_source: str
    key_id: str | None  # masked
    clock_skew_s: float | None
    ok: bool
    result: str  # what the cheap call saw (and the resolved settings), or the error
    hint: str | None = None
    resolved: tuple[Resolved, ...] = ()
    error_kind: str | None = None  # the failure's kind (VmopsError.kind: "auth", "provider_unavailable" ...)
    exit_code: int = 0  # the failure's exit code (README "Exit codes"); 0 when ok

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["resolved"] = [{"setting": r.setting, "value": r.value, "source": r.source} for r in self.resolved]
        return out


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[ProviderCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when every check passed; the failures' own exit code when they share one (3: credentials, 12: not
        answering ...), so a script can tell an outage from a bad key; else 14 (failures of several kinds)."""
        codes = {c.exit_code for c in self.checks if not c.ok}
        if not codes:
            return 0
        return codes.pop() if len(codes) == 1 else PartialFailure.exit_code


def check_provider(config: Config, name: str, timing: Timing | None = None) -> ProviderCheck:
    s = config.settings(name)
    described = s.describe()
    skew: float | None = None
    hint: str | None = None
    resolved: tuple[Resolved, ...] = ()
    kind, code = None, 0
    try:
        with get_provider(name, config, timing) as adapter:
            skew = adapter.clock_skew()
            result, ok = adapter.check_access(), True
            resolved = adapter.resolved()
            if resolved:
                result += "; " + "; ".join(f"{r.setting} {r.value} ({r.source})" for r in resolved)
    except VmopsError as e:
        result, ok, hint, kind, code = redact(e.message), False, e.hint or None, e.kind, e.exit_code
    except Exception as e:  # an adapter bug must not hide the other providers
        result, ok, kind, code = redact(f"unexpected error: {type(e).__name__}: {e}"), False, "internal", INTERNAL_EXIT
    if skew is not None and abs(skew) > SKEW_WARNING_S:
        hint = (hint + "; " if hint else "") + f"this machine's clock is {skew:+.0f}s off the server's: sync it (NTP)"
    return ProviderCheck(
        provider=name, dialect=s.dialect, dialect_source=s.sources.get("dialect", "default"), endpoint=s.url,
        credential=s.api_key.masked(), credential_source=s.sources.get("api_key", "default"),
        key_id=described.get("key_id"), clock_skew_s=None if skew is None else round(skew, 1), ok=ok,
        result=result, hint=hint, resolved=resolved, error_kind=kind, exit_code=code)


def run_doctor(config: Config, providers: Sequence[str] | None = None, timing: Timing | None = None) -> DoctorReport:
    """Check every enabled provider (or ``providers``) concurrently; never raises for one provider's failure."""
    names = list(providers or config.enabled)
    timing = timing or replace(timing_for(config), retry_attempts=1)  # one call: the deadline bounds it
    if not names:
        return DoctorReport(())
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="vmops-doctor") as pool:
        return DoctorReport(tuple(pool.map(lambda n: check_provider(config, n, timing), names)))
