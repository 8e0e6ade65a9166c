"""What a ``--gpu`` value means, checked against the catalogue before anything is sent.

* Across providers (`capacity`, `fleet create`): a canonical shape (``h100``, ``h100:8``) or any provider's
  native type name (``gpu_8x_h100``, ``h100.8x``), translated to its canonical shape.
* At one provider (`create`): a canonical shape that provider offers, or that provider's own native name;
  another provider's native name is refused with the right spelling.

Anything else is a UsageError listing the known shapes: an unknown shape is never an empty success.
``type_rows`` is what `vm types` shows. Data comes from vmops.catalogue only (no network).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from vmops.catalogue import PROVIDERS, NativeType, all_shapes
from vmops.errors import UsageError
from vmops.model import GpuShape

TYPES_HINT = "`vm types` lists every shape and each provider's names for it"


def known_shapes_text() -> str:
    return ", ".join(str(s) for s in all_shapes())


def _native_anywhere(text: str) -> tuple[str, NativeType] | None:
    for name, entry in PROVIDERS.items():
        t = entry.type_named(text) or next((x for x in entry.types if x.name.lower() == text.lower()), None)
        if t is not None:
            return name, t
    return None


def canonical_shape(gpu: str) -> GpuShape:
    """A canonical shape for a canonical spelling or any provider's native type name."""
    text = (gpu or "").strip()
    found = _native_anywhere(text)
    if found:
        return found[1].shape
    try:
        shape = GpuShape.parse(text)
    except ValueError:
        shape = None
    if shape is not None and shape in all_shapes():
        return shape
    raise UsageError(f"{gpu!r} is not a GPU shape vmops knows; known shapes: {known_shapes_text()} "
                     "(or a provider's native type name)", hint=TYPES_HINT)


def native_type_for(provider: str, gpu: str) -> NativeType:
    """The native type ``provider`` uses for ``gpu`` (a canonical shape it offers, or its own native name)."""
    entry = PROVIDERS[provider]
    text = (gpu or "").strip()
    own = entry.type_named(text)
    if own is not None:
        return own
    offered = ", ".join(str(s) for s in entry.shapes())
    found = _native_anywhere(text)
    if found is not None:
        other, t = found
        mine = entry.type_for(t.shape)
        if mine is not None:
            raise UsageError(f"{gpu!r} is {other}'s name for {t.shape}; at {provider} write {t.shape} or "
                             f"{mine.name}", hint=TYPES_HINT)
        raise UsageError(f"{provider} does not offer {t.shape} ({gpu!r} is {other}'s name for it); it offers "
                         f"{offered}", hint=TYPES_HINT)
    try:
        shape = GpuShape.parse(text)
    except ValueError:
        shape = None
    if shape is not None:
        mine = entry.type_for(shape)
        if mine is not None:
            return mine
    raise UsageError(f"{provider} does not offer {gpu!r}; it offers {offered} (or its native names: "
                     f"{', '.join(t.name for t in entry.types)})", hint=TYPES_HINT)


@dataclass(frozen=True)
class TypeRow:
    """One provider's native type for one canonical shape, with its list price."""

    shape: str
    gpus_per_vm: int
    provider: str
    native_type: str
    vcpus: int
    memory_gib: int
    list_price_per_hour: float
    price_per_gpu_hour: float
    price_source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def type_rows(provider: str | None = None, gpu: str | None = None) -> list[TypeRow]:
    """Every (shape, provider) pair, ordered by shape then price; filtered by provider and/or shape."""
    shape = canonical_shape(gpu) if gpu else None
    rows = []
    for name, entry in PROVIDERS.items():
        if provider and name != provider:
            continue
        for t in entry.types:
            if shape is not None and t.shape != shape:
                continue
            rows.append(TypeRow(str(t.shape), t.shape.count, name, t.name, t.vcpus, t.memory_gib,
                                t.list_price_per_hour, round(t.list_price_per_hour / t.shape.count, 2),
                                t.price_source))
    return sorted(rows, key=lambda r: (r.shape.split(":")[0], r.gpus_per_vm, r.list_price_per_hour, r.provider))
