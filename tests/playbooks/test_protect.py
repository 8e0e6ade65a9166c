"""The protect list and the guard an unattended step puts on the Decision it is about to apply (plain data,
no simulator)."""

from __future__ import annotations

import pytest

from vmops.cleanup.protect import DestroyLimitExceeded, Guard, Protected, ProtectList
from vmops.fleet.decision import Action, ActionKind, Decision


def _decision(*actions: Action, fleet: str = "train") -> Decision:
    return Decision(fleet, "reconcile", list(actions))


DESTROY = Action(ActionKind.DESTROY, "vmops-train-002", "nebius", "vm-2", "beyond the fleet's count of 1")
REFRESH = Action(ActionKind.REFRESH, "vmops-keep-001", "crusoe", "vm-1", "current state")


def test_protect_matches_name_id_provider_forms_and_fleet():
    p = ProtectList.of(["vmops-train-0*", " ", "crusoe:vm-9", "keep"])
    assert p.patterns == ("vmops-train-0*", "crusoe:vm-9", "keep")
    assert p.match_vm("nebius", "vm-2", "vmops-train-002") == "vmops-train-0*"
    assert p.match_vm("crusoe", "vm-9", "x") == "crusoe:vm-9"
    assert p.match_vm("lambda", "vm-9", "x") is None
    assert p.match_vm("lambda", "vm-3", "y", fleet="keep") == "keep"
    assert p.match_fleet("keep") == "keep" and p.match_fleet("train") is None


def test_guard_refuses_protected_or_too_many_destroys_and_passes_the_rest():
    assert Guard(ProtectList.of(["vmops-keep-*"]), 1)(_decision(DESTROY, REFRESH)) is True  # refresh touches nothing
    with pytest.raises(Protected, match="protected by 'vmops-train-002'"):
        Guard(ProtectList.of(["vmops-train-002"]))(_decision(DESTROY))
    with pytest.raises(Protected, match="protected by 'train'"):
        Guard(ProtectList.of(["train"]))(_decision(DESTROY))
    with pytest.raises(DestroyLimitExceeded, match="would destroy 1 VM.*max_destroy=0"):
        Guard(ProtectList(), 0)(_decision(DESTROY))
    assert Guard(ProtectList(), None)(_decision(DESTROY, DESTROY)) is True
