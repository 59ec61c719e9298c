"""enclume-agent: look the node up, serve the command API, heartbeat until the machine goes;
or in discovery mode post the machine's inventory (agent/discovery.py)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType

from agent import api_client, discovery, handlers, inventory, power, rescue
from agent.api_client import ApiError, Lookup
from agent.config import MIN_HEARTBEAT_S, AgentConfig, ConfigError, load
from agent.lldp import LldpListener
from agent.server import AgentServer
from agent.tokens import TokenState

LOG = logging.getLogger("enclume-agent")
# What the process does once its agent stopped serving, until the machine stops: its exit code.
Stay = Callable[[AgentConfig, threading.Event], int]


def lookup_macs(config: AgentConfig) -> list[str]:
    """The MACs given by flag, else BOOTIF followed by every NIC's MAC."""
    if config.macs:
        return list(config.macs)
    macs = [config.boot_mac] if config.boot_mac else []
    for name in inventory.interface_names():
        mac = (inventory.SYS_NET / name / "address").read_text().strip().lower()
        if mac not in macs:
            macs.append(mac)
    return macs


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.token = TokenState()
        self.stopped = threading.Event()
        # Set to heartbeat before the interval is over: a long command ended, or the agent
        # stops (every setter of ``stopped`` sets it too).
        self.beat_now = threading.Event()
        self.stays: Stay | None = None  # None while the agent serves
        self.lookup: Lookup | None = None
        self.ca_loaded = not (config.api_ca_file or config.api_ca_url)
        self._advertise = config.advertise_host
        interfaces = (list(config.lldp_interfaces) if config.lldp_interfaces is not None
                      else inventory.interface_names())
        self.lldp = LldpListener(interfaces).start()
        context = handlers.AgentContext(config, self.lldp, self.advertise_host,
                                          token=self.token.get,
                                          rescued=partial(self.stop_serving, _stay_rescued),
                                          command_finished=self.beat_now.set,
                                          locked_down=partial(self.stop_serving,
                                                              _stay_locked_down))
        self.server = AgentServer((config.listen_host, config.listen_port),
                                  handlers.build(context), self.token)

    def stop_serving(self, then: Stay) -> None:
        """finalize_rescue (the tenant network must not reach the agent) or system.lockdown
        (a node that is never powered off, at the end of its deploy) succeeded: once its
        answer has left, no API and no heartbeats, as Ironic's agent; the process then
        ``stays`` as ``then`` says until the machine stops."""
        self.stays = then
        threading.Timer(self.config.power_action_delay_s, self.stop_beating).start()

    def stop_beating(self) -> None:
        self.stopped.set()
        self.beat_now.set()

    def advertise_host(self) -> str:
        if self._advertise is None:
            self._advertise = api_client.route_address(self.config.api_url)
        return self._advertise

    @property
    def callback_url(self) -> str:
        host = self.advertise_host()
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.server.server_address[1]}"

    def _load_ca(self) -> bool:
        """Trust the API's CA before the first call to it (fetched again until it arrives)."""
        try:
            if self.config.api_ca_file:
                with open(self.config.api_ca_file, encoding="ascii") as pem:
                    api_client.trust_ca(pem.read())
            elif self.config.api_ca_url:
                api_client.trust_ca(api_client.fetch_ca(self.config.api_ca_url,
                                                        self.config.http_timeout_s))
        except (ApiError, OSError, ValueError) as exc:
            LOG.warning("the API's CA is not loaded: %s", exc)
            return False
        self.ca_loaded = True
        return True

    def _look_up(self) -> bool:
        if not self.ca_loaded and not self._load_ca():
            return False
        macs = lookup_macs(self.config)
        try:
            found = api_client.lookup(self.config.api_url, macs, self.config.node_uuid,
                                      self.config.http_timeout_s)
        except ApiError as exc:
            LOG.warning("lookup of %s failed: %s", ", ".join(macs) or "no MAC", exc)
            return False
        self.lookup = found
        self.token.set(found.token)
        LOG.info("this is node %s; heartbeat timeout %.0f s", found.node_uuid,
                 found.heartbeat_timeout_s)
        return True

    def interval(self) -> float:
        if self.config.heartbeat_interval_s is not None:
            return self.config.heartbeat_interval_s
        timeout = self.lookup.heartbeat_timeout_s if self.lookup else 0
        return max(MIN_HEARTBEAT_S, timeout / 3)

    def run(self) -> None:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="command-api", daemon=True).start()
        LOG.info("command API listening on %s:%d", self.config.listen_host,
                 self.server.server_address[1])
        while not self.stopped.is_set():
            if self.lookup is None and not self._look_up():
                self.stopped.wait(self.config.lookup_retry_s)
                continue
            assert self.lookup is not None
            try:
                api_client.heartbeat(self.config.api_url, self.lookup.node_uuid,
                                     self.callback_url, self.lookup.token,
                                     self.config.http_timeout_s)
            except ApiError as exc:
                LOG.warning("heartbeat failed: %s", exc)
                if exc.status in (401, 403):  # the conductor moved on: look up afresh
                    self.lookup = None
                    self.stopped.wait(self.config.lookup_retry_s)
                    continue
            self.beat_now.wait(self.interval())
            self.beat_now.clear()

    def stop(self) -> None:
        self.stop_beating()
        self.server.shutdown()
        self.server.server_close()
        self.lldp.stop()


def _on_signals(*events: threading.Event) -> None:
    """SIGTERM and SIGINT set ``events``."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        LOG.info("signal %d: stopping", signum)
        for event in events:
            event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _discover(config: AgentConfig) -> int:
    stopped = threading.Event()
    _on_signals(stopped)
    return discovery.run(config, stopped)


def _stay_rescued(config: AgentConfig, signalled: threading.Event) -> int:
    """A rescued ramdisk's agent only keeps the rescue user's login prompt up until the
    machine stops (init would start an agent that ends again at once)."""
    LOG.info("this ramdisk is rescued: the agent serves no API and sends no heartbeat")
    rescue.offer_login(config.rescue_login_command
                       or rescue.login_command(config.login_console), signalled)
    signalled.wait()
    return 0


def _stay_locked_down(config: AgentConfig, signalled: threading.Event) -> int:
    """Bring the network down and wait for the reboot (init would start a new agent)."""
    LOG.info("locked down: no API, no heartbeat")
    power.run(config.lockdown_command)
    signalled.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        config, verbose = load(argv)
    except ConfigError as exc:
        print(f"enclume-agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.discovery:
        return _discover(config)
    signalled = threading.Event()
    if rescue.is_rescued(Path(config.rescue_root)):
        _on_signals(signalled)
        return _stay_rescued(config, signalled)
    try:
        agent = Agent(config)
    except OSError as exc:
        LOG.error("cannot listen on %s:%d: %s", config.listen_host, config.listen_port,
                  exc.strerror or exc)
        return 1
    _on_signals(agent.stopped, agent.beat_now, signalled)
    agent.run()
    agent.stop()
    return agent.stays(config, signalled) if agent.stays else 0


if __name__ == "__main__":
    sys.exit(main())
