"""What a user asks of a fleet (``FleetSpec``) and the manager's concurrency limits (``Limits``)."""

from __future__ import annotations

from dataclasses import dataclass

from vmops.errors import UsageError
from vmops.fleet.naming import validate_fleet_name
from vmops.fleet.policies import DEFAULT_POLICY, get_policy
from vmops.model import GpuShape


#: Largest fleet vmops plans (a typo'd --count must be refused, not planned VM by VM for ever).
MAX_FLEET_COUNT = 10_000


@dataclass(frozen=True)
class FleetSpec:
    """What the user asked for."""

    gpu: GpuShape
    count: int
    name: str | None = None
    min_count: int | None = None
    policy: str = DEFAULT_POLICY
    allow_unterminable_reserved: bool = False

    def validated(self) -> "FleetSpec":
        """Check every argument before any network call; raise UsageError."""
        if self.count < 1:
            raise UsageError(f"--count must be at least 1, not {self.count}")
        if self.count > MAX_FLEET_COUNT:
            raise UsageError(f"--count {self.count} is more than the {MAX_FLEET_COUNT:,} VMs a fleet may have",
                             hint="Split the work into several fleets")
        mn = self.count if self.min_count is None else self.min_count
        if not 1 <= mn <= self.count:
            raise UsageError(f"--min must be between 1 and --count ({self.count}), not {mn}")
        try:
            get_policy(self.policy)
            if self.name is not None:
                validate_fleet_name(self.name)
        except ValueError as e:
            raise UsageError(str(e)) from None
        return FleetSpec(self.gpu, self.count, self.name, mn, self.policy.lower(), self.allow_unterminable_reserved)

    @property
    def min(self) -> int:
        return self.count if self.min_count is None else self.min_count


@dataclass(frozen=True)
class Limits:
    max_parallel: int = 16  # concurrent creates/destroys in all
    per_provider: int = 4  # concurrent creates at one provider
    destroy_attempts: int = 4  # tries per member for transient destroy failures
    wait_retries: int = 3  # re-polls after a provider stops answering while waiting
    retry_delay: float = 0.5
