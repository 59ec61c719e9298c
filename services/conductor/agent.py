"""The conductor's side of the agent protocol: one-time tokens and heartbeats; a heartbeat
continues the work that waits for the agent (``flows.CONTINUATIONS``: deploy, cleaning,
inspection).

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

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta

from services.common import fast_track, states
from services.common.agent_checks import (  # noqa: F401
    agent_token_matches,
    callback_url_problem,
    check_version,
)
from services.common.config_hardware_sections import DeploySettings
from services.common.exceptions import Conflict, EnclumeError, NotFound
from services.common.models import Node, utcnow
from services.common.states import expects_agent
from services.conductor import flows
from services.conductor.task import Task
from services.drivers import agent_client

LOG = logging.getLogger(__name__)

S = states.ProvisionState
TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 characters


class AgentTokenMissing(EnclumeError):
    code = 401


class AgentTokenInvalid(EnclumeError):
    code = 403


class NotExpectingAgent(Conflict):
    def __init__(self, node_uuid: str, state: str) -> None:
        super().__init__(f'Node {node_uuid} is in state "{state}" and does not expect an agent '
                         f'to call back.')




# -- tokens --------------------------------------------------------------------------------


def issue_token(task: Task, deploy: DeploySettings) -> str | None:
    """A new token if none was issued since the ramdisk was prepared, else None.

    In fast track's resting states (``fast_track.STABLE_STATES``, fast track on for the node)
    an agent that restarted while its node rested has lost its token: when the token's agent
    has not heartbeated for ENCLUME_AGENT_HEARTBEAT_TIMEOUT_S (it is gone), the earlier agent
    is forgotten and a new token issued, so that the next operation finds the agent up (as
    Ironic allows a lookup in its fast-track states)."""
    node = task.node
    resting = not expects_agent(node.provision_state)
    if resting and not fast_track.accepts_agent(node.provision_state, node.driver_info or {},
                                                deploy.fast_track):
        raise NotFound("No node in a state that expects an agent was found.")
    if node.driver_internal_info.get(agent_client.AGENT_TOKEN):
        if not resting or _heard_of_lately(node, deploy.agent_heartbeat_timeout_s):
            return None
        task.pop_internal_info(*agent_client.AGENT_KEYS)
        task.record("provisioning", "Fast track: the node's earlier agent stopped "
                                    "heartbeating; a new agent looked it up.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    task.update_internal_info(**{agent_client.AGENT_TOKEN: token})
    if resting:  # its agent has not heartbeated yet: not to be taken for a gone one
        task.update_internal_info(**{agent_client.AGENT_TOKEN_ISSUED:
                                     utcnow().replace(tzinfo=None).isoformat()})
    return token


def _heard_of_lately(node: Node, timeout_s: float) -> bool:
    """The token's agent heartbeated, or looked up, within ``timeout_s``."""
    info = node.driver_internal_info or {}
    times = [agent_client.last_heartbeat_of(info),
             agent_client.last_heartbeat_of({agent_client.AGENT_LAST_HEARTBEAT:
                                             info.get(agent_client.AGENT_TOKEN_ISSUED)})]
    now = utcnow().replace(tzinfo=None)
    return any(seen is not None and now - seen < timedelta(seconds=timeout_s) for seen in times)


def _token_matches(expected: object, given: str) -> bool:
    return agent_token_matches(expected, given)


class CallbackUrlChanged(Conflict):
    def __init__(self, node_uuid: str) -> None:
        super().__init__(f"The agent of node {node_uuid} already called back from another URL; "
                         "the callback URL can not change while its token is valid.")


def check_heartbeat(node_uuid: str, state: str, internal_info: dict[str, object],
                    given_token: object, callback_url: str, accepted: bool | None = None
                    ) -> None:
    """Refuse a heartbeat: 409 wrong state (``accepted``: whether the node's state takes one,
    default: it expects an agent), 401 no token, 403 wrong token, 409 a callback URL other than
    the one the token's agent gave first (nothing recorded)."""
    expected_token = internal_info.get(agent_client.AGENT_TOKEN)
    if not (expects_agent(state) if accepted is None else accepted):
        raise NotExpectingAgent(node_uuid, state)
    if not isinstance(given_token, str) or not given_token:
        raise AgentTokenMissing(f"Agent token is required for heartbeat processing of node "
                                f"{node_uuid}.")
    if not _token_matches(expected_token, given_token):
        raise AgentTokenInvalid(f"Invalid or missing agent token received for node "
                                f"{node_uuid}.")
    if not _same_callback(internal_info, callback_url):
        raise CallbackUrlChanged(node_uuid)


def _same_callback(internal_info: dict[str, object], callback_url: str) -> bool:
    """The first heartbeat after a token was issued pins the agent's URL until it is forgotten
    (a new boot of the ramdisk): a stolen token can not redirect the conductor's commands."""
    recorded = internal_info.get(agent_client.AGENT_URL)
    return recorded in (None, "", callback_url)


# -- heartbeats ----------------------------------------------------------------------------


def recorded_recently(state: str, internal_info: dict[str, object],
                      deploy: DeploySettings) -> bool:
    """A heartbeat of an agent fast track keeps on a resting node is recorded only when the
    last recorded one is older than a third of the shorter of the fast track and heartbeat
    timeouts: enough to keep it usable (and a ``wol`` node's power reading), without taking
    the node's lock, which users' requests need, on every heartbeat."""
    if expects_agent(state):
        return False
    seen = agent_client.last_heartbeat_of(internal_info)
    every_s = min(deploy.fast_track_timeout_s, deploy.agent_heartbeat_timeout_s) / 3
    return seen is not None and utcnow().replace(tzinfo=None) - seen < timedelta(
        seconds=every_s)


def heartbeat_work(callback_url: str, agent_version: str | None, token: str,
                   fast_track_default: bool = False) -> Callable[[Task], None]:
    """What a heartbeat does under the node's lock, in a worker. In the stable states fast
    track keeps the agent in (services/common/fast_track.py) it is only recorded."""

    def work(task: Task) -> None:
        node = task.node
        state = node.provision_state
        internal_info = node.driver_internal_info
        if not fast_track.accepts_agent(state, node.driver_info,
                                        fast_track_default) or not _token_matches(
                internal_info.get(agent_client.AGENT_TOKEN), token) or not _same_callback(
                internal_info, callback_url):
            return  # the operation ended or restarted, or another URL won, since the check
        task.update_internal_info(**{agent_client.AGENT_URL: callback_url,
                                     agent_client.AGENT_LAST_HEARTBEAT: utcnow().isoformat(),
                                     agent_client.AGENT_VERSION: agent_version})
        if state in states.WAIT_STATES:
            # The agent is alive: the callback timeout counts from its last heartbeat.
            node.provision_updated_at = utcnow()
        task.commit()
        continuation = flows.CONTINUATIONS.get(S(state))
        if continuation is not None:
            continuation(task)

    return work


