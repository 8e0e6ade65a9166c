"""What a user asks of a fleet (``FleetSpec``) and the manager's concurrency limits (``Limits``)."""

from __future__ import annotations

from dataclasses import dataclass

from vmops.errors import UsageError
from vmops.fleet.naming import validate_fleet_name
from vmops.model import GpuShape
from vmops.reserved import DEFAULT_MODE, ReservedMode

#: How a fleet may use reserved capacity (vmops/reserved.py): never (default: on-demand only), prefer
#: (reserved first), only.
RESERVED_MODES = tuple(m.value for m in ReservedMode)

#: Largest fleet vmops plans (a typo'd --count must be refused, not planned VM by VM for ever).
MAX_FLEET_COUNT = 10_000


@dataclass(frozen=True)
class FleetSpec:
    """What the user asked for."""

    gpu: GpuShape
    count: int
    name: str | None = None
    min_count: int | None = None  # None: all-or-nothing for a new fleet, the recorded minimum on resume
    policy: str | None = None  # None: the default policy for a new fleet, the recorded policy on resume
    allow_unterminable_reserved: bool = False
    reserved_mode: str | None = None  # never|prefer|only; None: never for a new fleet, the recorded mode on resume

    def validated(self) -> "FleetSpec":
        """Check every argument before any network call; raise UsageError."""
        if self.count < 1:
            raise UsageError(f"--count must be at least 1, not {self.count}")
        if self.count > MAX_FLEET_COUNT:
            raise UsageError(f"--count {self.count} is more than the {MAX_FLEET_COUNT:,} VMs a fleet may have",
                             hint="Split the work into several fleets")
        if self.min_count is not None and not 1 <= self.min_count <= self.count:
            raise UsageError(f"--min must be between 1 and --count ({self.count}), not {self.min_count}",
                             hint="--min is the fewest running VMs that count as success; leave it out for "
                                  "all-or-nothing")
        if self.reserved_mode is not None and self.reserved_mode not in RESERVED_MODES:
            raise UsageError(f"--reserved must be one of {', '.join(RESERVED_MODES)}, not {self.reserved_mode!r}")
        try:
            if self.policy is not None:
                from vmops.fleet.policies import get_policy

                get_policy(self.policy)
            if self.name is not None:
                validate_fleet_name(self.name)
        except ValueError as e:
            raise UsageError(str(e)) from None
        return FleetSpec(self.gpu, self.count, self.name, self.min_count,
                         None if self.policy is None else self.policy.lower(), self.allow_unterminable_reserved,
                         self.reserved_mode)

    @property
    def min(self) -> int:
        return self.count if self.min_count is None else self.min_count

    @property
    def policy_name(self) -> str:
        from vmops.fleet.policies import DEFAULT_POLICY  # loaded where a fleet is planned, not by every import

        return self.policy or DEFAULT_POLICY

    @property
    def reserved(self) -> ReservedMode:
        """The reservation mode to plan and create with (never when not given)."""
        return ReservedMode.parse(self.reserved_mode or DEFAULT_MODE)


@dataclass(frozen=True)
class Limits:
    per_provider: int = 4  # concurrent creates at one provider
    destroy_attempts: int = 4  # tries per member for transient destroy failures
    wait_retries: int = 3  # re-polls after a provider stops answering while waiting
    retry_delay: float = 0.5
