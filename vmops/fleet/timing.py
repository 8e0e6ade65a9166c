"""Plans that know time: the expected seconds until N VMs run at one provider (docs/design.md, "Plans that know
time").

A provider's ``LaunchPace`` (vmops/providers/pacing.py, given by its adapter) says how its creates are paced and
how long one takes to reach RUNNING. N creates go out as ``ceil(N / max_per_launch)`` launches; the first is sent
at once, each later one a launch interval (or a request interval, whichever is longer) after the one before;
the last is running its typical create-to-running time after it was sent. Providers work in parallel, so a
fleet is running when its slowest provider's share is. Pure arithmetic on data: nothing here asks a provider.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from vmops.providers.pacing import LaunchPace

INSTANT = LaunchPace()  # no pacing, running at once (a provider the plan has no pace for)


def expected_seconds(pace: LaunchPace, count: int) -> float:
    """Expected seconds from the first create until ``count`` VMs run at a provider with ``pace`` (0 for none)."""
    if count <= 0:
        return 0.0
    per_launch = pace.limits.max_per_launch if pace.limits.max_per_launch > 0 else count
    launches = math.ceil(count / per_launch)
    gap = max(pace.limits.launch_interval, pace.limits.request_interval)
    return round((launches - 1) * gap + pace.to_running, 3)


@dataclass(frozen=True)
class FleetClock:
    """The paces of the providers a plan may use, and how many VMs each already has in the plan (``base``: e.g.
    the reserved step's placements when the on-demand step is allocated)."""

    paces: Mapping[str, LaunchPace] = field(default_factory=dict)
    base: Mapping[str, int] = field(default_factory=dict)

    def pace(self, provider: str) -> LaunchPace:
        return self.paces.get(provider, INSTANT)

    def seconds(self, provider: str, count: int) -> float:
        """Expected seconds for ``provider`` with ``count`` more VMs than its base share."""
        return expected_seconds(self.pace(provider), self.base.get(provider, 0) + count)

    def with_base(self, counts: Iterable[tuple[str, int]]) -> "FleetClock":
        """This clock with ``counts`` (provider, VMs) added to the base shares."""
        base = dict(self.base)
        for provider, n in counts:
            base[provider] = base.get(provider, 0) + n
        return FleetClock(self.paces, base)

    def totals(self, counts: Mapping[str, int]) -> dict[str, float]:
        """Expected seconds per provider for ``counts`` more VMs each (providers with a base share included)."""
        return {p: self.seconds(p, counts.get(p, 0)) for p in dict.fromkeys([*self.base, *counts])}


NO_CLOCK = FleetClock()
