"""The conductor's side of the agent protocol: one-time tokens, heartbeats, and continuing the
work that waits for an agent (deploy, cleaning, inspection).

- A token is issued at the first lookup after the node was prepared to boot the ramdisk, under
  the node's lock, so no worker can overwrite it; later lookups never see it again.
- A heartbeat is checked (state, then token) in the caller's thread and answered at once; the
  work it triggers runs in a worker under the node's lock. A node that is locked (its previous
  heartbeat still being handled, a user's request) skips this heartbeat: the next one continues.
- Everything the continuation needs is in the database (``driver_internal_info``: the agent's
  URL and token, the command being waited for), so after a takeover the new owner continues on
  the agent's next heartbeat.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable

from services.common import states
from services.common.agent_checks import callback_url_problem, check_version  # noqa: F401
from services.common.exceptions import Conflict, EnclumeError, NotFound
from services.common.models import utcnow
from services.common.secrets import mask
from services.common.states import expects_agent
from services.conductor import flows
from services.conductor.task import Task
from services.drivers import agent_client
from services.drivers.agent_client import AgentUnavailable
from services.drivers.base import DriverError
from services.drivers.deploy.ramdisk import WAIT, forget_agent
from services.drivers.power_actions import power_off_or_ask

LOG = logging.getLogger(__name__)

S = states.ProvisionState
# The node history event type, and the words of last_error, of the operation of each state.
EVENT_TYPES = {S.DEPLOYING: "deploying", S.DEPLOYWAIT: "deploying", S.CLEANING: "cleaning",
               S.CLEANWAIT: "cleaning", S.INSPECTING: "introspection",
               S.INSPECTWAIT: "introspection", S.RESCUING: "rescue", S.RESCUEWAIT: "rescue"}
FAILURE_WORDS = {"deploying": "Deploy", "cleaning": "Cleaning", "introspection": "Inspection",
                 "rescue": "Rescue"}
TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 characters


class AgentTokenMissing(EnclumeError):
    code = 401


class AgentTokenInvalid(EnclumeError):
    code = 403


class NotExpectingAgent(Conflict):
    def __init__(self, node_uuid: str, state: str) -> None:
        super().__init__(f'Node {node_uuid} is in state "{state}" and does not expect an agent '
                         f'to call back.')


def event_type(state: str) -> str:
    return EVENT_TYPES.get(S(state), "provisioning")


# -- tokens --------------------------------------------------------------------------------


def issue_token(task: Task) -> str | None:
    """A new token if none was issued since the ramdisk was prepared, else None."""
    node = task.node
    if not expects_agent(node.provision_state):
        raise NotFound("No node in a state that expects an agent was found.")
    if node.driver_internal_info.get(agent_client.AGENT_TOKEN):
        return None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    task.update_internal_info(**{agent_client.AGENT_TOKEN: token})
    return token


def _token_matches(expected: object, given: str) -> bool:
    return isinstance(expected, str) and bool(expected) and hmac.compare_digest(
        expected.encode(), given.encode())


def check_heartbeat(node_uuid: str, state: str, expected_token: object,
                    given_token: object) -> None:
    """Refuse a heartbeat: 409 wrong state, 401 no token, 403 wrong token (nothing recorded)."""
    if not expects_agent(state):
        raise NotExpectingAgent(node_uuid, state)
    if not isinstance(given_token, str) or not given_token:
        raise AgentTokenMissing(f"Agent token is required for heartbeat processing of node "
                                f"{node_uuid}.")
    if not _token_matches(expected_token, given_token):
        raise AgentTokenInvalid(f"Invalid or missing agent token received for node "
                                f"{node_uuid}.")


# -- heartbeats ----------------------------------------------------------------------------


def heartbeat_work(callback_url: str, agent_version: str | None, token: str
                   ) -> Callable[[Task], None]:
    """What a heartbeat does under the node's lock, in a worker."""

    def work(task: Task) -> None:
        node = task.node
        state = node.provision_state
        if not expects_agent(state) or not _token_matches(
                node.driver_internal_info.get(agent_client.AGENT_TOKEN), token):
            return  # the operation ended or restarted since the heartbeat was checked
        task.update_internal_info(**{agent_client.AGENT_URL: callback_url,
                                     agent_client.AGENT_LAST_HEARTBEAT: utcnow().isoformat(),
                                     agent_client.AGENT_VERSION: agent_version})
        if state in states.WAIT_STATES:
            # The agent is alive: the callback timeout counts from its last heartbeat.
            node.provision_updated_at = utcnow()
        task.commit()
        continuation = CONTINUATIONS.get(S(state))
        if continuation is not None:
            continuation(task)

    return work


def _resume(task: Task) -> Callable[[], None]:
    def resume() -> None:
        if task.node.provision_state in states.WAIT_STATES:
            task.process_event("resume")
            task.commit()

    return resume


def _advance(task: Task, method: Callable[[Task, Callable[[], None]], str | None],
             finish: Callable[[Task], None]) -> None:
    operation = event_type(task.node.provision_state)
    resume = _resume(task)
    try:
        outcome = method(task, resume)
    except AgentUnavailable as exc:
        if task.node.provision_state in states.WAIT_STATES:
            LOG.warning("node %s: %s; trying again on the next heartbeat", task.node.uuid, exc)
            task.commit()
            return
        fail(task, operation, exc)
        return
    except DriverError as exc:
        fail(task, operation, exc)
        return
    if outcome == WAIT:
        return
    resume()
    finish(task)


def fail(task: Task, operation: str, error: BaseException) -> None:
    """Fail the operation with last_error "<Operation> failed for node X: <error>"."""
    word = FAILURE_WORDS.get(operation, operation.capitalize())
    # The agent's message may quote an image URL: never its password.
    fail_with(task, operation, mask(f"{word} failed for node {task.node.uuid}: {error}"))


def fail_with(task: Task, operation: str, message: str) -> None:
    """Remove the ramdisk boot, power the node off, forget its agent, then fail the operation
    (as Ironic: the failure state is reached once the machine is off)."""
    try:
        task.driver.boot.clean_up_ramdisk(task)
        power_off_or_ask(task)  # Wake-on-LAN powers off through the agent: forget it after
    except DriverError as exc:
        task.record(operation, f"Powering the node off after the failure failed: {exc}",
                    severity="WARNING")
    forget_agent(task)
    task.fail(operation, message)


def _end_agent_boot(task: Task) -> None:
    power_off_or_ask(task)
    forget_agent(task)


def _finish_deploy(task: Task) -> None:
    _end_agent_boot(task)
    flows.finish_deploy(task)


def _finish_cleaning(task: Task) -> None:
    _end_agent_boot(task)
    flows.finish_cleaning(task)


def _finish_inspection(task: Task) -> None:
    _end_agent_boot(task)
    task.driver.boot.clean_up_ramdisk(task)
    task.node.inspection_finished_at = utcnow()
    task.process_event("done")


def _continue_deploy(task: Task) -> None:
    method = getattr(task.driver.deploy, "continue_deploy", None)
    if method is not None:
        _advance(task, method, _finish_deploy)


def _continue_cleaning(task: Task) -> None:
    method = getattr(task.driver.deploy, "continue_clean", None)
    if method is not None:
        _advance(task, method, _finish_cleaning)


def _continue_inspection(task: Task) -> None:
    method = getattr(task.driver.inspect, "continue_inspection", None)
    if method is not None:
        _advance(task, method, _finish_inspection)


CONTINUATIONS: dict[S, Callable[[Task], None]] = {
    S.DEPLOYWAIT: _continue_deploy,
    S.CLEANWAIT: _continue_cleaning,
    S.INSPECTWAIT: _continue_inspection,
}
