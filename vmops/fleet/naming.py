"""Fleet and member names. A member's VM name embeds its fleet's name, so ownership can be read back
from any provider's instance list (orphan adoption after a crash) without trusting vmops' record; the
ownership rule itself (name and, where the provider has them, labels) is vmops.fleet.ownership."""

from __future__ import annotations

import random
import re

PREFIX = "vmops-"
#: Fleet names: lower-case letters, digits and single hyphens; 2..40 chars; safe in every provider's
#: VM name, in a Nebius label value and as a file name.
_FLEET_RE = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,39}$")
_MEMBER_RE = re.compile(r"^vmops-(?P<fleet>[a-z][a-z0-9-]*?)-(?P<seq>\d{3,})$")

_ADJECTIVES = (
    "amber", "brave", "calm", "crisp", "dapper", "eager", "fuzzy", "gentle", "happy", "jolly", "keen",
    "lively", "mellow", "nimble", "plucky", "quiet", "rapid", "sunny", "swift", "tidy", "vivid", "witty",
)
_NOUNS = (
    "otter", "falcon", "badger", "heron", "lynx", "marten", "osprey", "panda", "quokka", "raven", "sable",
    "tapir", "walrus", "yak", "zebra", "bison", "condor", "dingo", "ferret", "gecko", "ibis", "koala",
)


def validate_fleet_name(name: str) -> str:
    """Return ``name`` if it is a valid fleet name, else raise ValueError saying what is allowed."""
    if not _FLEET_RE.match(name or ""):
        raise ValueError(
            f"{name!r} is not a valid fleet name; use 2-40 lower-case letters, digits and single hyphens, "
            f"starting with a letter (e.g. train-h100)")
    return name


def member_name(fleet: str, seq: int) -> str:
    """Deterministic VM name of a fleet's ``seq``-th member: ``vmops-<fleet>-<seq:03d>``."""
    return f"{PREFIX}{fleet}-{seq:03d}"


def parse_member_name(name: object) -> tuple[str, int] | None:
    """``(fleet, seq)`` for a VM name made by :func:`member_name`, else None.

    Unambiguous: the sequence number is the digits after the *last* hyphen (a fleet name never ends in a
    hyphen and the number never contains one), so `vmops-a-001-002` is fleet `a-001`'s second member and
    never fleet `a`'s; and only the exact spelling :func:`member_name` produces is accepted (round trip),
    so a hand-made `vmops-a-0001` is nobody's member."""
    if not isinstance(name, str):
        return None
    m = _MEMBER_RE.match(name)
    if not m:
        return None
    fleet, seq = m.group("fleet"), int(m.group("seq"))
    if not _FLEET_RE.match(fleet) or member_name(fleet, seq) != name:
        return None  # only names vmops makes: `vmops-a-0001` or `vmops-a-001` with a leading zero too many is not
    return fleet, seq


def belongs_to(name: object, fleet: str) -> bool:
    """Does a VM called ``name`` belong to ``fleet`` (exactly; never to a fleet whose name merely starts alike)?"""
    parsed = parse_member_name(name)
    return parsed is not None and parsed[0] == fleet


def generate_fleet_name(taken: set[str] | frozenset[str] = frozenset(), rng: random.Random | None = None) -> str:
    """A readable name not in ``taken``, like ``swift-otter-42``."""
    r = rng or random.Random()
    for _ in range(1000):
        name = f"{r.choice(_ADJECTIVES)}-{r.choice(_NOUNS)}-{r.randint(10, 99)}"
        if name not in taken:
            return name
    raise RuntimeError("could not generate an unused fleet name")  # pragma: no cover
