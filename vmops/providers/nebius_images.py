"""Which public image family a Nebius boot disk is made from, when ``VMOPS_NEBIUS_IMAGE_FAMILY`` does not say
(docs/design.md, "Nebius cloud dialect"). The wire calls (``ImageService/ListPublic`` for the project's region)
are the adapter's; this module only decides, from the images they returned.

The rule: candidates are the families of READY images that recommend the platform to create (or, when no
READY image recommends it, every READY family whose name says GPU or CUDA). The built-in default family is
used when it is a candidate, else the only candidate; anything else is a configuration error that lists
the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from vmops.errors import UsageError

#: the family dstack uses, taken when the region offers it for the platform
DEFAULT_IMAGE_FAMILY = "ubuntu22.04-cuda12"
HINT = "Set VMOPS_NEBIUS_IMAGE_FAMILY (or `image_family` in [nebius]) to the family to boot from"


@dataclass(frozen=True)
class PublicImage:
    """What the rule reads of one ``nebius.compute.v1.Image``."""

    family: str
    ready: bool
    recommended_platforms: tuple[str, ...]


@dataclass(frozen=True)
class ImageChoice:
    """The family boot disks are made from, and where that came from (for `vm doctor`)."""

    family: str
    source: str  # "config" or "discovered in <region>"


def candidates(images: Iterable[PublicImage], platforms: Sequence[str]) -> list[str]:
    ready = [i for i in images if i.ready and i.family]
    wanted = set(platforms)
    recommended = sorted({i.family for i in ready if wanted & set(i.recommended_platforms)})
    if recommended:
        return recommended
    return sorted({i.family for i in ready if "cuda" in i.family.lower() or "gpu" in i.family.lower()})


def choose(images: Iterable[PublicImage], platforms: Sequence[str], region: str) -> ImageChoice:
    """The family for ``platforms`` (one platform to create on; several for a report) in ``region``."""
    found = candidates(images, platforms)
    where = f"discovered in {region}"
    if DEFAULT_IMAGE_FAMILY in found:
        return ImageChoice(DEFAULT_IMAGE_FAMILY, where)
    if len(found) == 1:
        return ImageChoice(found[0], where)
    which = "/".join(platforms)
    if not found:
        raise UsageError(f"no public image family in {region} suits {which} (no READY GPU image)",
                         provider="nebius", hint=HINT)
    raise UsageError(f"cannot choose an image family for {which} in {region}: {len(found)} candidates "
                     f"({', '.join(found[:12])})", provider="nebius", hint=HINT)
