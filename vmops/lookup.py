"""Find one VM by its id or name across the enabled providers (no --provider needed when unambiguous).

An id match wins over a name match. Several matches are a UsageError listing the candidates (with the
provider and id that pick each); none is NotFound, unless a provider did not answer, in which case that
provider's own error is raised (the VM may be there). Deleted VMs a provider still lists do not match.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from vmops.errors import NotFound, UsageError
from vmops.model import Instance, State

if TYPE_CHECKING:
    from vmops.session import Session


def find_instance(session: "Session", ref: str, providers: Iterable[str] | None = None) -> Instance:
    names = list(providers) if providers is not None else session.provider_names()
    listed = session.instances(names)
    live = [i for i in listed.flat() if i.state is not State.DELETED]
    matches = [i for i in live if i.id == ref] or [i for i in live if i.name == ref]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        candidates = "; ".join(f"{i.provider} {i.id}" for i in matches)
        several = len({i.provider for i in matches}) > 1
        raise UsageError(f"{len(matches)} VMs are called {ref!r}: {candidates}",
                         hint="Name one by its ID" + (", or add --provider" if several else ""))
    if listed.failures:
        provider, err = next(iter(listed.failures.items()))
        where = f"no VM {ref!r} at {' or '.join(listed.results)}" if listed.results else f"cannot look up VM {ref!r}"
        why = err.message if len(listed.failures) == 1 else f"{provider}: {err.message}"
        raise type(err)(f"{where}; {' and '.join(listed.failures)} could not be read ({why})", provider=None,
                        hint=err.hint)
    raise NotFound(f"no VM has the id or name {ref!r} at {', '.join(names)}")
