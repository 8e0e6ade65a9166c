"""Reading decoded provider answers defensively: the parsing layer the REST adapters share.

A provider answer is untrusted input. The adapters read every field through these helpers, which check the
type the contract promises and raise ``MalformedAnswer`` (a ``ProviderUnavailable``, exit 12) naming the
answer and the field, never the value. Absent optional fields are None; present ones of the wrong type are
an error, because guessing (``str(12345)`` as an instance id) would hand wrong data to the fleet manager.
Unknown *values* of enum-like fields are not an error: ``model.map_state`` turns them into ``unknown``.

``parsing(provider, what)`` is the safety net around a whole conversion: any ``TypeError``, ``ValueError``,
``KeyError``, ``AttributeError`` or ``IndexError`` inside becomes ``MalformedAnswer`` too.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from vmops.errors import MalformedAnswer

_PARSE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError)
#: No provider's ids come near this; a longer "id" is refused before it is sent (a server would answer with an
#: error too big to read - gRPC trailers over 8 KiB - or close the connection).
MAX_ID_LENGTH = 256


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def malformed(provider: str, what: str, problem: str) -> MalformedAnswer:
    return MalformedAnswer(f"malformed answer to {what}: {problem}", provider=provider)


@contextmanager
def parsing(provider: str, what: str) -> Iterator[None]:
    """Turn a conversion error inside the block into ``MalformedAnswer`` (typed errors pass through)."""
    try:
        yield
    except MalformedAnswer:
        raise
    except _PARSE_ERRORS as e:
        raise malformed(provider, what, f"{type(e).__name__} while reading it") from e


def obj(value: Any, provider: str, what: str, field: str = "the answer") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise malformed(provider, what, f"{field} is {_type(value)}, not an object")
    return value


def items(body: Any, key: str, provider: str, what: str) -> list[Mapping[str, Any]]:
    """``body[key]``: a list of objects (a missing list is an error, not an empty answer)."""
    envelope = obj(body, provider, what)
    if key not in envelope:
        raise malformed(provider, what, f"field {key!r} is missing")
    value = envelope[key]
    if not isinstance(value, list):
        raise malformed(provider, what, f"field {key!r} is {_type(value)}, not a list")
    for i, entry in enumerate(value):
        obj(entry, provider, what, f"entry {i} of {key!r}")
    return value


def text(d: Mapping[str, Any], key: str, provider: str, what: str, *, required: bool = False) -> str | None:
    """A string field; None when absent/null (an error when ``required``, as is an empty string)."""
    value = d.get(key)
    if value is None:
        if required:
            raise malformed(provider, what, f"field {key!r} is missing")
        return None
    if not isinstance(value, str):
        raise malformed(provider, what, f"field {key!r} is {_type(value)}, not a string")
    if required and not value.strip():
        raise malformed(provider, what, f"field {key!r} is empty")
    return value


def number(d: Mapping[str, Any], key: str, provider: str, what: str, *, required: bool = False) -> float | None:
    value = d.get(key)
    if value is None:
        if required:
            raise malformed(provider, what, f"field {key!r} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise malformed(provider, what, f"field {key!r} is {_type(value)}, not a number")
    return float(value)


def integer(d: Mapping[str, Any], key: str, provider: str, what: str, default: int | None = None) -> int:
    value = d.get(key)
    if value is None:
        if default is None:
            raise malformed(provider, what, f"field {key!r} is missing")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(provider, what, f"field {key!r} is {_type(value)}, not a whole number")
    return value


def flag(d: Mapping[str, Any], key: str, provider: str, what: str, default: bool = False) -> bool:
    value = d.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise malformed(provider, what, f"field {key!r} is {_type(value)}, not true/false")
    return value
