"""The RMCP+ session of an emulated BMC: pyghmi's server session with what pyghmi 1.6.19 gets
wrong (LAB-NOTES). Its server answers any cipher-suite proposal with suite 3 and "OK", which
crashes pyghmi's client (it proposes SHA-256 first): this session refuses everything but suite 3
with RMCP+ status 0x11 so the client falls back. Unknown user names get RAKP2 status 0x0D
("unauthorized name") instead of silence."""

from __future__ import annotations

from pyghmi.ipmi.private import constants as ipmi_constants
from pyghmi.ipmi.private import serversession

# RMCP+ status codes (IPMI 2.0 table 13-15).
RMCP_UNAUTHORIZED_NAME = 0x0D
RMCP_NO_CIPHER_SUITE_MATCH = 0x11

# RMCP+ algorithms of cipher suite 3, the only one pyghmi's server code implements.
AUTH_RAKP_HMAC_SHA1 = 1
INTEGRITY_HMAC_SHA1_96 = 1
CONFIDENTIALITY_AES_CBC_128 = 1


def _send_rmcp_payload(session: serversession.ServerSession, payload: bytes,
                       payload_type: str) -> None:
    session.send_payload(payload, ipmi_constants.payload_types[payload_type], retry=False)


class EmulatedSession(serversession.ServerSession):
    """pyghmi's server session, refusing cipher suites it cannot do and naming unknown users."""

    refused = False
    k1: bytes | None = None  # the integrity key, known once RAKP3 checked out
    Rc: bytes | None = None  # this BMC's random number, known once RAKP1 was answered

    def create_open_session_response(self, request: bytearray) -> bytearray:
        self.clientsessionid = request[4:8]
        algorithms = (request[12], request[20], request[28]) if len(request) >= 32 else None
        suite_3 = (AUTH_RAKP_HMAC_SHA1, INTEGRITY_HMAC_SHA1_96, CONFIDENTIALITY_AES_CBC_128)
        if algorithms != suite_3:
            self.refused = True
            return bytearray([request[0], RMCP_NO_CIPHER_SUITE_MATCH, 0, 0]) + self.clientsessionid
        self.refused = False
        return super().create_open_session_response(request)

    def _got_rakp1(self, data: bytearray) -> None:
        if self.refused or len(data) < 28:
            return
        name = bytes(data[28:28 + data[27]])
        try:
            known = data[27] > 0 and self.authdata.get(name.decode("utf-8")) is not None
        except UnicodeDecodeError:
            known = False
        if not known:
            refusal = bytearray([data[0], RMCP_UNAUTHORIZED_NAME, 0, 0]) + self.clientsessionid
            _send_rmcp_payload(self, refusal, "rakp2")
            return
        super()._got_rakp1(data[:28 + data[27]])

    def _got_rakp3(self, data: bytearray) -> None:
        if self.refused or self.Rc is None or len(data) < 8:
            return  # no RAKP1 answered in this session: nothing to check RAKP3 against
        super()._got_rakp3(data)

    def close_server_session(self) -> None:
        self.bmc.forget_session(self)


