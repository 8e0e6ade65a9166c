"""One benchmark figure: value, the floor it is compared with (measured in the same run), ratio, target."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    group: str  # "1 fleet create", ...
    name: str  # "vm fleet create --count 512"
    value: float
    unit: str  # "s", "calls/VM", "MiB"
    floor: float | None  # None: the figure is a count, not compared with a floor
    floor_what: str
    target: float | None  # on the ratio, the value, or what the value adds to the floor (see target_on)
    target_on: str = "ratio"  # "ratio", "value" or "over" (value - floor, in the value's unit)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor <= 0:
            return None
        return self.value / self.floor

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.target_on == "over":
            return None if self.floor is None else self.value - self.floor <= self.target
        got = self.ratio if self.target_on == "ratio" else self.value
        return None if got is None else got <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        if self.target_on == "ratio":
            return f"<= {self.target:g}x"
        if self.target_on == "over":
            return f"<= floor + {self.target:g} {self.unit}"
        return f"<= {self.target:g} {self.unit}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["met"] = self.met
        d["target_text"] = self.target_text()
        return d
