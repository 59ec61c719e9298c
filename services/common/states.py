"""Ironic's provision state machine, table-driven. The only code that assigns provision_state.

States, events and targets have Ironic's names so that Ironic's clients read them unchanged.
Two kinds of events move a node:
- *verbs* an API user asks for (``manage``, ``provide``, ``deploy`` ...), accepted only from a
  state where the table allows them; each starts an operation and sets its target;
- *internal* events a conductor raises while it works (``done``, ``fail``, ``wait``,
  ``resume``, ``clean``), which continue the current operation and keep its target.

Targets: a stable state clears ``target_provision_state``; a transitional or failure state keeps
the target of the operation it belongs to (``deploy failed`` keeps ``active``), as Ironic does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol


class ProvisionState(StrEnum):
    ENROLL = "enroll"
    VERIFYING = "verifying"
    MANAGEABLE = "manageable"
    AVAILABLE = "available"
    ACTIVE = "active"
    DEPLOYING = "deploying"
    DEPLOYWAIT = "wait call-back"
    DEPLOYFAIL = "deploy failed"
    DELETING = "deleting"
    ERROR = "error"
    CLEANING = "cleaning"
    CLEANWAIT = "clean wait"
    CLEANFAIL = "clean failed"
    INSPECTING = "inspecting"
    INSPECTWAIT = "inspect wait"
    INSPECTFAIL = "inspect failed"
    ADOPTING = "adopting"
    ADOPTFAIL = "adopt failed"
    RESCUING = "rescuing"
    RESCUEWAIT = "rescue wait"
    RESCUEFAIL = "rescue failed"
    RESCUE = "rescue"
    UNRESCUING = "unrescuing"
    UNRESCUEFAIL = "unrescue failed"
    # A ``hold`` step parks its operation until the ``unhold`` verb (API 1.85).
    DEPLOYHOLD = "deploy hold"
    CLEANHOLD = "clean hold"
    # Servicing an active node (API 1.87): its service steps, then back to active.
    SERVICING = "servicing"
    SERVICEWAIT = "service wait"
    SERVICEFAIL = "service failed"
    SERVICEHOLD = "service hold"


S = ProvisionState

STABLE_STATES: frozenset[ProvisionState] = frozenset(
    {S.ENROLL, S.MANAGEABLE, S.AVAILABLE, S.ACTIVE, S.ERROR, S.RESCUE}
)
FAILURE_STATES: frozenset[ProvisionState] = frozenset(
    {S.DEPLOYFAIL, S.CLEANFAIL, S.INSPECTFAIL, S.ADOPTFAIL, S.RESCUEFAIL, S.UNRESCUEFAIL, S.ERROR,
     S.SERVICEFAIL}
)
WAIT_STATES: frozenset[ProvisionState] = frozenset(
    {S.DEPLOYWAIT, S.CLEANWAIT, S.INSPECTWAIT, S.RESCUEWAIT, S.SERVICEWAIT}
)
# Parked by a hold step until a user's unhold (or abort): no callback timeout runs out.
HOLD_STATES: frozenset[ProvisionState] = frozenset({S.DEPLOYHOLD, S.CLEANHOLD, S.SERVICEHOLD})
# States in which a conductor is working on the node right now (not waiting for anyone).
BUSY_STATES: frozenset[ProvisionState] = frozenset(
    {S.VERIFYING, S.DEPLOYING, S.DELETING, S.CLEANING, S.INSPECTING, S.ADOPTING, S.RESCUING,
     S.UNRESCUING, S.SERVICING}
)
# Not read by the power sync, as Ironic's SYNC_EXCLUDED_STATES (ironic/conductor/manager.py):
# an agent may be calling back, the node is still being enrolled, or its adoption failed.
POWER_SYNC_EXCLUDED_STATES: frozenset[ProvisionState] = frozenset(
    {S.DEPLOYWAIT, S.CLEANWAIT, S.ENROLL, S.ADOPTFAIL}
)

# The target a non-stable state works towards when an operation enters it.
DEFAULT_TARGET: dict[ProvisionState, ProvisionState] = {
    S.VERIFYING: S.MANAGEABLE,
    S.DEPLOYING: S.ACTIVE,
    S.DEPLOYWAIT: S.ACTIVE,
    S.DEPLOYFAIL: S.ACTIVE,
    S.DELETING: S.AVAILABLE,
    S.CLEANING: S.AVAILABLE,
    S.CLEANWAIT: S.AVAILABLE,
    S.CLEANFAIL: S.AVAILABLE,
    S.INSPECTING: S.MANAGEABLE,
    S.INSPECTWAIT: S.MANAGEABLE,
    S.INSPECTFAIL: S.MANAGEABLE,
    S.ADOPTING: S.ACTIVE,
    S.ADOPTFAIL: S.ACTIVE,
    S.RESCUING: S.RESCUE,
    S.RESCUEWAIT: S.RESCUE,
    S.RESCUEFAIL: S.RESCUE,
    S.UNRESCUING: S.ACTIVE,
    S.UNRESCUEFAIL: S.ACTIVE,
    S.DEPLOYHOLD: S.ACTIVE,
    S.CLEANHOLD: S.AVAILABLE,
    S.SERVICING: S.ACTIVE,
    S.SERVICEWAIT: S.ACTIVE,
    S.SERVICEFAIL: S.ACTIVE,
    S.SERVICEHOLD: S.ACTIVE,
}

VERBS: frozenset[str] = frozenset(
    {"manage", "provide", "inspect", "clean", "deploy", "rebuild", "delete", "abort", "adopt",
     "rescue", "unrescue", "unhold", "service"}
)
INTERNAL_EVENTS: frozenset[str] = frozenset({"done", "fail", "wait", "resume", "clean", "hold",
                                             "unhold"})


@dataclass(frozen=True)
class Transition:
    source: ProvisionState
    event: str
    destination: ProvisionState
    # The target set by this transition when it differs from the destination's default
    # (manual cleaning works towards manageable, not available).
    target: ProvisionState | None = None


TRANSITIONS: tuple[Transition, ...] = (
    # enrollment and verification
    Transition(S.ENROLL, "manage", S.VERIFYING),
    Transition(S.VERIFYING, "done", S.MANAGEABLE),
    Transition(S.VERIFYING, "fail", S.ENROLL),
    # manageable <-> available, through automated cleaning
    Transition(S.MANAGEABLE, "provide", S.CLEANING),
    Transition(S.AVAILABLE, "manage", S.MANAGEABLE),
    # manual cleaning goes back to manageable
    Transition(S.MANAGEABLE, "clean", S.CLEANING, target=S.MANAGEABLE),
    Transition(S.CLEANING, "manage", S.MANAGEABLE),
    Transition(S.CLEANING, "done", S.AVAILABLE),
    Transition(S.CLEANING, "fail", S.CLEANFAIL),
    Transition(S.CLEANING, "wait", S.CLEANWAIT),
    Transition(S.CLEANWAIT, "resume", S.CLEANING),
    Transition(S.CLEANWAIT, "fail", S.CLEANFAIL),
    Transition(S.CLEANWAIT, "abort", S.CLEANFAIL),
    Transition(S.CLEANFAIL, "manage", S.MANAGEABLE),
    # deployment
    Transition(S.AVAILABLE, "deploy", S.DEPLOYING),
    Transition(S.DEPLOYING, "wait", S.DEPLOYWAIT),
    Transition(S.DEPLOYWAIT, "resume", S.DEPLOYING),
    Transition(S.DEPLOYING, "done", S.ACTIVE),
    Transition(S.DEPLOYING, "fail", S.DEPLOYFAIL),
    Transition(S.DEPLOYWAIT, "fail", S.DEPLOYFAIL),
    Transition(S.DEPLOYWAIT, "abort", S.DEPLOYFAIL),
    Transition(S.DEPLOYFAIL, "deploy", S.DEPLOYING),
    Transition(S.DEPLOYFAIL, "rebuild", S.DEPLOYING),
    Transition(S.ACTIVE, "rebuild", S.DEPLOYING),
    Transition(S.ERROR, "rebuild", S.DEPLOYING),
    # tear down, then automated cleaning
    Transition(S.ACTIVE, "delete", S.DELETING),
    Transition(S.DEPLOYWAIT, "delete", S.DELETING),
    Transition(S.DEPLOYFAIL, "delete", S.DELETING),
    Transition(S.ERROR, "delete", S.DELETING),
    Transition(S.DELETING, "clean", S.CLEANING),
    Transition(S.DELETING, "fail", S.ERROR),
    # inspection
    Transition(S.MANAGEABLE, "inspect", S.INSPECTING),
    Transition(S.INSPECTING, "done", S.MANAGEABLE),
    Transition(S.INSPECTING, "fail", S.INSPECTFAIL),
    Transition(S.INSPECTING, "wait", S.INSPECTWAIT),
    Transition(S.INSPECTWAIT, "resume", S.INSPECTING),
    Transition(S.INSPECTWAIT, "done", S.MANAGEABLE),
    Transition(S.INSPECTWAIT, "fail", S.INSPECTFAIL),
    Transition(S.INSPECTWAIT, "abort", S.INSPECTFAIL),
    Transition(S.INSPECTFAIL, "manage", S.MANAGEABLE),
    Transition(S.INSPECTFAIL, "inspect", S.INSPECTING),
    # adoption
    Transition(S.MANAGEABLE, "adopt", S.ADOPTING),
    Transition(S.ADOPTING, "done", S.ACTIVE),
    Transition(S.ADOPTING, "fail", S.ADOPTFAIL),
    Transition(S.ADOPTFAIL, "adopt", S.ADOPTING),
    Transition(S.ADOPTFAIL, "manage", S.MANAGEABLE),
    # rescue
    Transition(S.ACTIVE, "rescue", S.RESCUING),
    Transition(S.RESCUING, "done", S.RESCUE),
    Transition(S.RESCUING, "wait", S.RESCUEWAIT),
    Transition(S.RESCUEWAIT, "resume", S.RESCUING),
    Transition(S.RESCUING, "fail", S.RESCUEFAIL),
    Transition(S.RESCUEWAIT, "fail", S.RESCUEFAIL),
    Transition(S.RESCUEWAIT, "abort", S.RESCUEFAIL),
    Transition(S.RESCUEWAIT, "delete", S.DELETING),
    Transition(S.RESCUE, "rescue", S.RESCUING),
    Transition(S.RESCUE, "unrescue", S.UNRESCUING),
    Transition(S.RESCUE, "delete", S.DELETING),
    Transition(S.RESCUEFAIL, "rescue", S.RESCUING),
    Transition(S.RESCUEFAIL, "unrescue", S.UNRESCUING),
    Transition(S.RESCUEFAIL, "delete", S.DELETING),
    Transition(S.UNRESCUING, "done", S.ACTIVE),
    Transition(S.UNRESCUING, "fail", S.UNRESCUEFAIL),
    Transition(S.UNRESCUEFAIL, "rescue", S.RESCUING),
    Transition(S.UNRESCUEFAIL, "unrescue", S.UNRESCUING),
    Transition(S.UNRESCUEFAIL, "delete", S.DELETING),
    # hold steps (1.85): unhold goes back to waiting, where the steps go on
    Transition(S.DEPLOYING, "hold", S.DEPLOYHOLD),
    Transition(S.DEPLOYWAIT, "hold", S.DEPLOYHOLD),
    Transition(S.DEPLOYHOLD, "unhold", S.DEPLOYWAIT),
    Transition(S.DEPLOYHOLD, "abort", S.DEPLOYFAIL),
    Transition(S.CLEANING, "hold", S.CLEANHOLD),
    Transition(S.CLEANWAIT, "hold", S.CLEANHOLD),
    Transition(S.CLEANHOLD, "unhold", S.CLEANWAIT),
    Transition(S.CLEANHOLD, "abort", S.CLEANFAIL),
    # servicing (1.87); an abort ends in active, as Ironic's (service failed, then abort)
    Transition(S.ACTIVE, "service", S.SERVICING),
    Transition(S.SERVICING, "done", S.ACTIVE),
    Transition(S.SERVICING, "fail", S.SERVICEFAIL),
    Transition(S.SERVICING, "wait", S.SERVICEWAIT),
    Transition(S.SERVICING, "hold", S.SERVICEHOLD),
    Transition(S.SERVICEWAIT, "resume", S.SERVICING),
    Transition(S.SERVICEWAIT, "hold", S.SERVICEHOLD),
    Transition(S.SERVICEWAIT, "fail", S.SERVICEFAIL),
    Transition(S.SERVICEWAIT, "abort", S.SERVICEFAIL),
    Transition(S.SERVICEWAIT, "delete", S.DELETING),
    Transition(S.SERVICEHOLD, "service", S.SERVICING),
    Transition(S.SERVICEHOLD, "unhold", S.SERVICEWAIT),
    Transition(S.SERVICEHOLD, "fail", S.SERVICEFAIL),
    Transition(S.SERVICEHOLD, "abort", S.SERVICEFAIL),
    Transition(S.SERVICEFAIL, "service", S.SERVICING),
    Transition(S.SERVICEFAIL, "rescue", S.RESCUING),
    Transition(S.SERVICEFAIL, "wait", S.SERVICEWAIT),
    Transition(S.SERVICEFAIL, "hold", S.SERVICEHOLD),
    Transition(S.SERVICEFAIL, "delete", S.DELETING),
    Transition(S.SERVICEFAIL, "abort", S.ACTIVE),
)

_TABLE: dict[tuple[ProvisionState, str], Transition] = {
    (t.source, t.event): t for t in TRANSITIONS
}

# API targets (the "target" of PUT /states/provision) and the event each one raises.
API_TARGET_EVENTS: dict[str, str] = {
    "manage": "manage",
    "provide": "provide",
    "inspect": "inspect",
    "clean": "clean",
    "active": "deploy",
    "deploy": "deploy",
    "rebuild": "rebuild",
    "deleted": "delete",
    "undeploy": "delete",
    "abort": "abort",
    "adopt": "adopt",
    "rescue": "rescue",
    "unrescue": "unrescue",
    "unhold": "unhold",
    "service": "service",
}
# API targets that only exist from a given microversion on.
API_TARGET_MIN_VERSION: dict[str, tuple[int, int]] = {
    "manage": (1, 4),
    "provide": (1, 4),
    "inspect": (1, 6),
    "abort": (1, 13),
    "clean": (1, 15),
    "adopt": (1, 17),
    "rescue": (1, 38),
    "unrescue": (1, 38),
    "deploy": (1, 73),
    "undeploy": (1, 73),
    "unhold": (1, 85),
    "service": (1, 87),
}


class InvalidTransition(Exception):
    """An event that the table does not allow from the node's current state."""

    def __init__(self, state: ProvisionState, event: str) -> None:
        super().__init__(f'The event "{event}" is not allowed in state "{state}".')
        self.state = state
        self.event = event


class HasProvisionState(Protocol):
    provision_state: str
    target_provision_state: str | None
    provision_updated_at: datetime | None


def next_state(
    state: ProvisionState, target: ProvisionState | None, event: str
) -> tuple[ProvisionState, ProvisionState | None]:
    """Where ``event`` takes a node in ``state`` working towards ``target``: (state, target)."""
    transition = _TABLE.get((state, event))
    if transition is None:
        raise InvalidTransition(state, event)
    destination = transition.destination
    if destination in STABLE_STATES:
        return destination, None
    if transition.target is not None:
        return destination, transition.target
    continues_operation = event in INTERNAL_EVENTS and state not in STABLE_STATES
    if continues_operation and target is not None:
        return destination, target
    return destination, DEFAULT_TARGET[destination]


def allows(state: ProvisionState | str, event: str) -> bool:
    return (ProvisionState(state), event) in _TABLE


def apply(node: HasProvisionState, event: str) -> ProvisionState:
    """Move ``node`` by ``event``; InvalidTransition (node untouched) if the table forbids it."""
    current = ProvisionState(node.provision_state)
    target = ProvisionState(node.target_provision_state) if node.target_provision_state else None
    new_state, new_target = next_state(current, target, event)
    node.provision_state = new_state.value
    node.target_provision_state = new_target.value if new_target else None
    node.provision_updated_at = datetime.now(UTC)
    return new_state


# States in which a node runs (or is about to run) the agent: lookups and heartbeats accepted.
AGENT_STATES = frozenset({S.DEPLOYING, S.DEPLOYWAIT, S.CLEANING, S.CLEANWAIT, S.INSPECTING,
                          S.INSPECTWAIT, S.RESCUING, S.RESCUEWAIT})


def expects_agent(state: str) -> bool:
    return state in AGENT_STATES


def initial_state(enroll: bool = True) -> ProvisionState:
    """Where a new node starts: ``enroll``, or ``available`` for clients older than API 1.11."""
    return S.ENROLL if enroll else S.AVAILABLE


def events_from(state: ProvisionState | str) -> list[str]:
    return sorted(event for (source, event) in _TABLE if source == ProvisionState(state))
