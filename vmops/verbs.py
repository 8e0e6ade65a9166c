"""What a single-VM verb would do to a VM as just read: nothing (it is already where the verb takes it), be
refused (and why), or be sent.

One rule for `vm stop/start/destroy/...`, their --dry-run and the Ansible module's check mode, so a preview
says exactly what the action then does. The adapter says what it refuses by itself (``Provider.refusal``: a
verb it lacks, a VM it will not act on); the states each verb needs are the canonical model's, the same at
every provider (../shared/provider-apis.md: a stop needs a running VM, a start a stopped one). A VM whose
state vmops cannot read (``unknown``) is left to the provider to judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmops.errors import FailedPrecondition, VmopsError
from vmops.model import Instance, State
from vmops.providers.base import TARGETS

if TYPE_CHECKING:
    from vmops.providers.base import Provider

#: The verbs a repeat of which has nothing left to do once the VM is where they take it (``TARGETS``).
IDEMPOTENT = frozenset({"stop", "start", "destroy"})

#: The state of a VM on its way to where the verb takes it (a verb sent earlier): waiting is all that is left.
UNDERWAY: dict[str, State] = {"stop": State.STOPPING, "start": State.STARTING, "destroy": State.DELETING}

#: The states a verb needs the VM in; every provider refuses it in any other.
NEEDS: dict[str, frozenset[State]] = {
    "stop": frozenset({State.RUNNING}),
    "start": frozenset({State.STOPPED}),
    "reboot": frozenset({State.RUNNING}),
    "reset": frozenset({State.RUNNING}),
    "restart": frozenset({State.RUNNING}),
}


@dataclass(frozen=True)
class Verdict:
    """``already``: nothing to send, the VM is where the verb takes it. ``underway``: nothing to send, the VM is
    on its way there (a stop sent earlier, then Ctrl-C): only the wait is left. ``refusal``: the error the verb
    raises before sending anything. None of these: the verb would be sent."""

    already: bool = False
    underway: bool = False
    refusal: VmopsError | None = None


def verdict(adapter: "Provider", verb: str, instance: Instance) -> Verdict:
    """What ``verb`` would do to ``instance`` (as just read from ``adapter``'s provider), with no request."""
    if verb in IDEMPOTENT and instance.state in TARGETS[verb]:
        return Verdict(already=True)
    if UNDERWAY.get(verb) is instance.state:
        return Verdict(underway=True)
    refusal = adapter.refusal(verb, instance)
    needs = NEEDS.get(verb)
    if refusal is None and needs and instance.state not in needs and instance.state is not State.UNKNOWN:
        wanted = " or ".join(sorted(s.value for s in needs))
        refusal = FailedPrecondition(f"{instance.name} ({instance.id}) is {instance.state.value}; {verb} needs it "
                                     f"{wanted}", provider=adapter.name)
    return Verdict(refusal=refusal)
