"""Fast track (Ironic's ``[deploy]fast_track``): the agent of a node stays up between
inspection, cleaning and deploy, so the next operation uses it without a power cycle.

Enabled by ENCLUME_DEPLOY_FAST_TRACK, or per node by ``driver_info/fast_track`` (which wins,
as in Ironic). With it, an agent's heartbeats are also taken in the stable states between those
operations (``enroll``, ``manageable``, ``available``): they are recorded, nothing is continued.
Whether an operation may skip the reboot is decided by the drivers (``services/drivers/deploy/
ramdisk.py``): the agent heartbeated within ENCLUME_DEPLOY_FAST_TRACK_TIMEOUT_S, the node is
powered on and has no ``last_error``.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.common.exceptions import Invalid
from services.common.states import ProvisionState, expects_agent

S = ProvisionState
# Ironic's FASTTRACK_HEARTBEAT_ALLOWED beyond the states that always expect an agent.
STABLE_STATES = frozenset({S.ENROLL, S.MANAGEABLE, S.AVAILABLE})
KEY = "fast_track"
_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "off", "n", "no"})


def enabled(driver_info: Mapping[str, object], default: bool) -> bool:
    """The node's ``driver_info/fast_track`` (a boolean, or a string as Ironic's strict
    bool_from_string reads it), else ``default`` (ENCLUME_DEPLOY_FAST_TRACK)."""
    value = driver_info.get(KEY)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE | _FALSE:
        return word in _TRUE
    raise Invalid(f"Invalid value of fast_track: Unrecognized value '{value}', acceptable "
                  f"values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', "
                  f"'true', 'y', 'yes'")


def accepts_agent(state: str, driver_info: Mapping[str, object], default: bool) -> bool:
    """Whether a node in ``state`` takes its agent's heartbeats."""
    if expects_agent(state):
        return True
    if state not in STABLE_STATES:
        return False
    try:
        return enabled(driver_info, default)
    except Invalid:
        return False
