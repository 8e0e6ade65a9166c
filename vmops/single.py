"""`vm create`'s requests: one ``CreateRequest`` per VM name, with the reservation policy that the
``--reserved`` mode and ``--reservation`` ids give (vmops/reserved.py holds the rule; this module only finds
the reservations a ``prefer``/``only`` create can go to). Front ends parse and validate their flags, call
:func:`create_requests`, and send the requests with ``Provider.create``."""

from __future__ import annotations

from typing import Sequence

from vmops.errors import FailedPrecondition, InsufficientCapacity, VmopsError
from vmops.model import CreateRequest, Reservation
from vmops.providers.base import Provider
from vmops.reserved import ALLOW_RESERVED_FLAG, RESERVED_FLAG, ReservedMode, reservation_request


def resolve_mode(reserved: ReservedMode | str | None, reservation_ids: Sequence[str]) -> ReservedMode:
    """The mode of a `vm create`: as given; if not given, ``only`` when reservations are named, else ``never``."""
    if reserved is None or reserved == "":
        return ReservedMode.ONLY if reservation_ids else ReservedMode.NEVER
    return ReservedMode.parse(reserved)


def free_reservations(adapter: Provider, native_type: str, region: str | None, *,
                      allow_unterminable: bool = False) -> tuple[list[Reservation], list[Reservation]]:
    """``(usable, refused)``: the provider's active reservations of ``native_type`` (in ``region``, if given)
    with a free VM, most free first; ``refused`` are those whose VMs the API could not release. A reservation
    named by the other dialect's product of the same GPU shape is of that type too (the catalogue resolves
    ``h100:8`` to one dialect's name; Crusoe's cloud reservations show the API's product name)."""
    known = adapter.catalogue.type_named(native_type)
    shape = known.shape if known is not None else None
    usable: list[Reservation] = []
    refused: list[Reservation] = []
    for r in adapter.reservations():
        same_type = r.native_type == native_type or (shape is not None and r.gpu == shape)
        if not same_type or r.available_vms <= 0:
            continue
        if region is not None and r.region not in (None, region):
            continue
        if not adapter.capabilities.terminate_reserved and not allow_unterminable:
            refused.append(r)
        else:
            usable.append(r)
    usable.sort(key=lambda r: (-r.available_vms, r.id))
    return usable, refused


def refuse_taken_names(adapter: Provider, names: Sequence[str]) -> None:
    """`vm create` keeps names unique at a provider, so that a name picks one VM in `vm get/stop/destroy -p`
    and a create repeated after an unclear outcome (a lost answer, Ctrl-C) cannot make a second billing VM.
    One request: the provider's own name lookup for one name (a filtered list, Nebius' GetByName), one list for
    several; raises FailedPrecondition naming the VMs that already carry one of ``names``."""
    wanted = set(names)
    found = adapter.find_by_name(names[0]) if len(wanted) == 1 else adapter.list_instances()
    taken = [i for i in found if i.name in wanted and not i.state.is_gone]
    if taken:
        which = "; ".join(f"{i.name} ({i.id}, {i.state.value})" for i in taken)
        first = taken[0]
        raise FailedPrecondition(f"{'a VM called' if len(taken) == 1 else 'VMs called'} {which} already "
                                 f"{'exists' if len(taken) == 1 else 'exist'}; vmops keeps names unique at a "
                                 "provider, so nothing was created", provider=adapter.name,
                                 hint=f"Choose another --name, or destroy it first (`vm destroy {first.id} -p "
                                      f"{adapter.name}`)")


def create_requests(adapter: Provider, native_type: str, names: Sequence[str], *, region: str | None = None,
                    reserved: ReservedMode | str | None = None, reservation_ids: Sequence[str] = (),
                    allow_unterminable_reserved: bool = False, names_free: bool = False) -> list[CreateRequest]:
    """The requests of a `vm create` of ``names`` at ``adapter`` (one VM each).

    ``reserved`` (None: not given, see :func:`resolve_mode`): ``never`` keeps the VMs on on-demand capacity
    (where the provider would place into a reservation by itself and cannot be told not to, its adapter picks
    another location, or refuses a ``region`` that holds one); ``prefer`` uses a free reservation of the
    type if there is one, else on-demand; ``only`` uses the named or a free reservation and never on-demand.
    Raises UsageError for contradicting flags and InsufficientCapacity when ``only`` finds no reservation.
    ``names_free``: the caller made sure no VM carries these names (:func:`refuse_taken_names`), so the adapter
    need not look them up again before each create.
    """
    mode = resolve_mode(reserved, reservation_ids)
    ids = tuple(reservation_ids)
    caps = adapter.capabilities
    if mode is not ReservedMode.NEVER and not ids:
        try:
            usable, refused = free_reservations(adapter, native_type, region,
                                                allow_unterminable=allow_unterminable_reserved)
        except VmopsError:
            if mode is ReservedMode.ONLY:
                raise
            usable, refused = [], []  # prefer: no reservation could be read, so on-demand
        ids = tuple(r.id for r in usable)
        if mode is ReservedMode.ONLY and not ids:
            where = f" in {region}" if region else ""
            if refused:
                raise InsufficientCapacity(
                    f"{adapter.name}'s free reservations of {native_type}{where} ({', '.join(r.id for r in refused)}) "
                    "hold VMs that cannot be terminated through the API", provider=adapter.name,
                    hint=f"Opt in with {ALLOW_RESERVED_FLAG}, or name one with --reservation")
            raise InsufficientCapacity(f"no reservation at {adapter.name} has a free {native_type} VM{where}",
                                       provider=adapter.name,
                                       hint=f"`vm reservations` lists them; {RESERVED_FLAG} prefer falls back to "
                                            "on-demand")
    policy, rids = reservation_request(mode, caps, reservation_ids=ids,
                                       allow_unterminable=allow_unterminable_reserved)
    return [CreateRequest(name=n, native_type=native_type, region=region, reservation_policy=policy,
                          reservation_ids=rids, known_ids=frozenset() if names_free else None) for n in names]
