"""The provision state machine: Ironic's table, target semantics, property tests."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common import states
from services.common.states import S

ALL_EVENTS = sorted(states.VERBS | states.INTERNAL_EVENTS)


@dataclass
class FakeNode:
    provision_state: str = S.ENROLL.value
    target_provision_state: str | None = None
    provision_updated_at: datetime | None = None


def test_every_state_is_reachable_from_enroll() -> None:
    seen = {S.ENROLL}
    queue = deque([S.ENROLL])
    while queue:
        state = queue.popleft()
        for event in states.events_from(state):
            nxt, _ = states.next_state(state, None, event)
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    assert seen == set(S)


def test_no_state_is_a_dead_end() -> None:
    for state in S:
        assert states.events_from(state), f"{state} has no way out"


def test_wait_states_can_be_aborted_into_their_failure_state() -> None:
    expected = {S.CLEANWAIT: S.CLEANFAIL, S.DEPLOYWAIT: S.DEPLOYFAIL,
                S.INSPECTWAIT: S.INSPECTFAIL, S.RESCUEWAIT: S.RESCUEFAIL}
    for wait, failed in expected.items():
        assert states.next_state(wait, states.DEFAULT_TARGET[wait], "abort")[0] == failed


def test_busy_states_cannot_be_aborted() -> None:
    for state in states.BUSY_STATES:
        assert not states.allows(state, "abort")


def test_deploy_and_tear_down_follow_ironic() -> None:
    node = FakeNode(S.AVAILABLE.value)
    assert states.apply(node, "deploy") == S.DEPLOYING
    assert node.target_provision_state == "active"
    assert states.apply(node, "wait") == S.DEPLOYWAIT
    assert node.target_provision_state == "active"
    assert states.apply(node, "fail") == S.DEPLOYFAIL
    assert node.target_provision_state == "active"  # failure keeps the operation's target
    assert states.apply(node, "delete") == S.DELETING
    assert node.target_provision_state == "available"  # a new operation sets its own
    assert states.apply(node, "clean") == S.CLEANING
    assert node.target_provision_state == "available"
    assert states.apply(node, "done") == S.AVAILABLE
    assert node.target_provision_state is None
    assert node.provision_updated_at is not None


def test_manual_cleaning_works_towards_manageable() -> None:
    node = FakeNode(S.MANAGEABLE.value)
    states.apply(node, "clean")
    assert (node.provision_state, node.target_provision_state) == ("cleaning", "manageable")
    states.apply(node, "wait")
    assert node.target_provision_state == "manageable"
    states.apply(node, "resume")
    states.apply(node, "manage")
    assert (node.provision_state, node.target_provision_state) == ("manageable", None)


def test_refused_event_leaves_the_node_untouched() -> None:
    node = FakeNode(S.ENROLL.value)
    with pytest.raises(states.InvalidTransition):
        states.apply(node, "deploy")
    assert node == FakeNode(S.ENROLL.value)


def test_api_targets_map_to_known_events() -> None:
    for target, event in states.API_TARGET_EVENTS.items():
        assert event in states.VERBS, target
    assert states.API_TARGET_EVENTS["undeploy"] == states.API_TARGET_EVENTS["deleted"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALL_EVENTS), max_size=60))
def test_random_event_sequences_keep_the_invariants(events: list[str]) -> None:
    node = FakeNode()
    for event in events:
        before = (node.provision_state, node.target_provision_state)
        allowed = states.allows(node.provision_state, event)
        try:
            states.apply(node, event)
        except states.InvalidTransition:
            assert not allowed
            assert (node.provision_state, node.target_provision_state) == before
            continue
        assert allowed
        state = S(node.provision_state)
        if state in states.STABLE_STATES:
            assert node.target_provision_state is None
        else:
            assert node.target_provision_state is not None
            assert S(node.target_provision_state) in states.STABLE_STATES
        if event in states.INTERNAL_EVENTS and S(before[0]) not in states.STABLE_STATES and (
            state not in states.STABLE_STATES
        ):
            assert node.target_provision_state == before[1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(states.VERBS)), max_size=40))
def test_only_verbs_from_stable_or_failed_states_start_operations(verbs: list[str]) -> None:
    node = FakeNode()
    for verb in verbs:
        state = S(node.provision_state)
        if states.allows(state, verb):
            assert state in states.STABLE_STATES | states.FAILURE_STATES | states.WAIT_STATES \
                | {S.CLEANING}  # cleaning -> manage ends a manual clean, as in Ironic
            states.apply(node, verb)
