"""A session the BMC dropped while it was idle (its inactivity timeout) is not used again.

pyghmi keeps its sessions alive only while one of its calls runs; a conductor with nothing to
ask a BMC for longer than the BMC's inactivity timeout (a node waiting for its agent) finds
the session gone. Enclume's cached pyghmi Command used to send into it: pyghmi retried ~10 s
before logging in again, past the call's deadline on a loaded machine (a lab deploy failed on
its final power-off). The emulated BMC is real IPMI over UDP; the hour that passes is
simulated: the BMC forgets its sessions, pyghmi's and Enclume's clocks move on.
"""

from __future__ import annotations

import time

import pytest
from pyghmi.ipmi.private import session as pyghmi_session

from services.common.config import Settings
from services.drivers import ipmi
from services.drivers.ipmi import IpmiAccess, IpmiSessions
from tests.support.ipmi_bmc import running_fleet

pytestmark = pytest.mark.integration
IDLE_S = 3600.0


def test_a_session_the_bmc_dropped_while_idle_is_not_used_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with running_fleet(1, "admin", "stale-session-pw") as (fleet, [(port, _)]):
        sessions = IpmiSessions(Settings())
        access = IpmiAccess(fleet.host, port, "admin", "stale-session-pw", 4, None)
        power = sessions.run(access, "power status", lambda command: command.get_power())
        assert power == {"powerstate": "off"}
        first = sessions.run(access, "session", lambda command: command.ipmi_session)

        # An hour without a call: the BMC dropped the session, pyghmi sent no keepalive.
        fleet.forget_sessions(port)
        with pyghmi_session.util.protect(pyghmi_session.KEEPALIVE_SESSIONS):
            for parameters in pyghmi_session.Session.keepalive_sessions.values():
                parameters["timeout"] -= IDLE_S
        now = time.monotonic()
        monkeypatch.setattr(ipmi.time, "monotonic", lambda: now + IDLE_S)

        power = sessions.run(access, "power status", lambda command: command.get_power())
        assert power == {"powerstate": "off"}
        second = sessions.run(access, "session", lambda command: command.ipmi_session)
        assert second is not first  # logged in anew, not the dropped session retried
