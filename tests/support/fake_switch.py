"""SSH switches for the tests: fakenos, extended to keep each vendor's configuration modes and
access-port VLANs, and to record every line it was sent.

fakenos (PyPI) answers a fixed list of exec-mode commands over SSH and knows no configuration
mode. `VendorShell` subclasses its shell: it handles the modes, prompts and answers netmiko and
our switch drivers meet (enable, configure terminal, interface, switchport, save; Junos'
configure private, set/delete, commit), refuses anything else the way the vendor does, and
appends every non-empty line to the session's record. `FastSshServer` is fakenos' paramiko
server without its 10 ms pause after every received byte, and with public-key login.

    with FakeSwitch("cisco_ios", ports=["GigabitEthernet0/1"]) as switch:
        ...  # SSH to 127.0.0.1:switch.port as switch.username / switch.password
        switch.sessions[-1]     # the lines of the last session
        switch.port_vlans       # running configuration: access VLAN per port
"""

from __future__ import annotations

import io
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

import paramiko
from fakenos import FakeNOS
from fakenos.plugins.servers.ssh_server_paramiko import (
    ParamikoSshServer,
    ParamikoSshServerInterface,
    TapIO,
    shell_to_channel_tap,
)
from fakenos.plugins.shell.cmd_shell import CMDShell

LOG = logging.getLogger(__name__)
EXIT = object()  # a handler's answer that ends the session
START_RETRIES = 5

# fakenos has no Dell OS10 platform; its Force10 (OS9) one gives the exec-mode basics.
FAKENOS_PLATFORMS = {"cisco_ios": "cisco_ios", "cisco_nxos": "cisco_nxos",
                     "arista_eos": "arista_eos", "juniper_junos": "juniper_junos",
                     "dell_os10": "dell_force10"}


@dataclass
class SwitchState:
    """What a fake switch holds across sessions."""

    ports: set[str]
    port_vlans: dict[str, int] = field(default_factory=dict)  # running configuration
    saved_vlans: dict[str, int] | None = None  # startup configuration, once saved
    sessions: list[list[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_session(self) -> list[str]:
        with self.lock:
            self.sessions.append([])
            return self.sessions[-1]


class VendorShell(CMDShell):
    """fakenos' shell with configuration modes. Subclasses say the vendor's words; `state`
    is bound per switch (see `FakeSwitch`)."""

    state: ClassVar[SwitchState]
    username: ClassVar[str]
    initial_mode: ClassVar[str] = "exec"
    invalid: ClassVar[str] = "% Invalid input detected at '^' marker."
    terminal: ClassVar[dict[str, str]] = {"terminal width 511": "", "terminal length 0": ""}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode = self.initial_mode
        self.interface: str | None = None
        self.record = self.state.new_session()
        self._show_prompt()

    # -- fakenos / cmd.Cmd hooks ---------------------------------------------------------------

    def precmd(self, line: str) -> str:
        if line.strip():
            with self.state.lock:
                self.record.append(line.strip())
        return line

    def default(self, line: str) -> bool:
        command = line.strip()
        answer = self.handle(command)
        if answer is None:
            if self.mode in ("exec", "enable"):
                # fakenos' own exec-mode commands (show ...), under our prompt.
                stop = bool(super().default(line))
                self._show_prompt()
                return stop
            answer = self.invalid
        if answer is EXIT:
            return True
        if answer:
            self.writeline(answer)
        self._show_prompt()
        return False

    # -- the vendor's language -----------------------------------------------------------------

    def handle(self, command: str) -> Any:
        """The answer to `command` ("" for none, EXIT), or None when it is not understood."""
        raise NotImplementedError

    def prompt_for(self, mode: str) -> str:
        raise NotImplementedError

    def _show_prompt(self) -> None:
        self.prompt = self.prompt_for(self.mode)

    def set_vlan(self, port: str, vlan: int) -> None:
        with self.state.lock:
            self.state.port_vlans[port] = vlan

    def save(self) -> None:
        with self.state.lock:
            self.state.saved_vlans = dict(self.state.port_vlans)


class IosLikeShell(VendorShell):
    """Cisco IOS and its look-alikes: exec > enable # config (config)# interface (config-if)#."""

    enable_from_exec = True
    config_banner = "Enter configuration commands, one per line.  End with CNTL/Z."
    save_commands: ClassVar[dict[str, str]] = {"write mem": "Building configuration...\n[OK]",
                                                "write memory": "Building configuration...\n[OK]"}
    interface_words = re.compile(r"interface (\S+)")
    access_vlan = re.compile(r"switchport access vlan (\d{1,4})")

    def prompt_for(self, mode: str) -> str:
        host = self.base_prompt
        return {"exec": f"{host}>", "enable": f"{host}#", "config": f"{host}(config)#",
                "interface": f"{host}{self.interface_prompt()}#"}[mode]

    def interface_prompt(self) -> str:
        return "(config-if)"

    def handle(self, command: str) -> Any:
        if self.mode in ("exec", "enable"):
            if command in self.terminal:
                return self.terminal[command]
            if command == "exit":
                return EXIT
        if self.mode == "exec":
            if command == "enable":
                self.mode = "enable"
                return ""
            return None
        if self.mode == "enable":
            if command in ("configure terminal", "conf t"):
                self.mode = "config"
                return self.config_banner
            if command in self.save_commands:
                self.save()
                return self.save_commands[command]
            return None
        return self.configure(command)

    def configure(self, command: str) -> Any:
        if command == "end":
            self.mode, self.interface = "enable", None
            return ""
        if command == "exit":
            self.mode = "config" if self.mode == "interface" else "enable"
            self.interface = None
            return ""
        if match := self.interface_words.fullmatch(command):
            if match.group(1) not in self.state.ports:
                return self.invalid
            self.mode, self.interface = "interface", match.group(1)
            return ""
        if self.mode == "interface" and self.interface is not None:
            if command == "switchport mode access":
                return ""
            if match := self.access_vlan.fullmatch(command):
                vlan = int(match.group(1))
                if not 1 <= vlan <= 4094:
                    return self.invalid
                self.set_vlan(self.interface, vlan)
                return ""
        return self.invalid


class CiscoIosShell(IosLikeShell):
    pass


class CiscoNxosShell(IosLikeShell):
    initial_mode = "enable"  # NX-OS logs in at the # prompt
    config_banner = "Enter configuration commands, one per line. End with CNTL/Z."
    save_commands: ClassVar[dict[str, str]] = {
        "copy running-config startup-config":
            "[########################################] 100%\nCopy complete."}


class AristaEosShell(IosLikeShell):
    terminal: ClassVar[dict[str, str]] = {"terminal width 511": "Width set to 511 columns.",
                                          "terminal length 0": "Pagination disabled."}
    config_banner = ""
    save_commands: ClassVar[dict[str, str]] = {
        "copy running-config startup-config": "Copy completed successfully.",
        "write memory": "Copy completed successfully."}

    def interface_prompt(self) -> str:
        short = re.sub(r"^Ethernet", "Et", self.interface or "")
        return f"(config-if-{short})"


class DellOs10Shell(IosLikeShell):
    initial_mode = "enable"
    invalid = "% Error: Unrecognized command."
    config_banner = ""
    save_commands: ClassVar[dict[str, str]] = {
        "copy running-configuration startup-configuration": ""}

    def interface_prompt(self) -> str:
        short = re.sub(r"^ethernet", "eth", self.interface or "")
        return f"(conf-if-{short})"


class JunosShell(VendorShell):
    """Junos: operational `user@host> `, configuration `[edit]` + `user@host# ` with a
    candidate configuration that `commit` makes the running one."""

    invalid = "unknown command."
    terminal: ClassVar[dict[str, str]] = {
        "set cli screen-width 511": "Screen width set to 511",
        "set cli complete-on-space off": "Disabling complete-on-space",
        "set cli screen-length 0": "Screen length set to 0"}
    members = re.compile(r"(set|delete) interfaces (\S+) unit 0 family ethernet-switching "
                         r"vlan members(?: (\d{1,4}))?")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.candidate: dict[str, int] = {}
        super().__init__(*args, **kwargs)

    def prompt_for(self, mode: str) -> str:
        user_host = f"{self.username}@{self.base_prompt}"
        if mode == "config":
            return f"\r\n[edit]\r\n{user_host}# "
        return f"{user_host}> "

    def handle(self, command: str) -> Any:
        if self.mode == "exec":
            if command in self.terminal:
                return self.terminal[command]
            if command == "exit":
                return EXIT
            if command in ("configure", "configure private"):
                self.mode = "config"
                with self.state.lock:
                    self.candidate = dict(self.state.port_vlans)
                warning = ("warning: uncommitted changes will be discarded on exit\n"
                           if command == "configure private" else "")
                return warning + "Entering configuration mode"
            return None
        if command in ("exit configuration-mode", "exit", "quit"):
            self.mode = "exec"  # a private candidate is discarded
            return "Exiting configuration mode"
        if command == "commit":
            return self.commit()
        if match := self.members.fullmatch(command):
            verb, port, vlan = match.groups()
            if verb == "set" and vlan is not None and 1 <= int(vlan) <= 4094:
                self.candidate[port] = int(vlan)
                return ""
            if verb == "delete" and vlan is None:
                return "" if self.candidate.pop(port, None) is not None else (
                    "warning: statement not found")
            return "syntax error."
        return self.invalid

    def commit(self) -> str:
        unknown = sorted(set(self.candidate) - self.state.ports)
        if unknown:
            return "\n".join([f"[edit interfaces {unknown[0]}]", "  'unit 0'",
                              f"    error: device {unknown[0]} not found",
                              "error: configuration check-out failed"])
        with self.state.lock:
            self.state.port_vlans = dict(self.candidate)
            self.state.saved_vlans = dict(self.candidate)  # a commit is persistent
        return "commit complete"


SHELLS: dict[str, type[VendorShell]] = {
    "cisco_ios": CiscoIosShell, "cisco_nxos": CiscoNxosShell, "arista_eos": AristaEosShell,
    "juniper_junos": JunosShell, "dell_os10": DellOs10Shell}


# -- SSH server ----------------------------------------------------------------------------


class _ServerInterface(ParamikoSshServerInterface):
    def __init__(self, authorized_key: paramiko.PKey | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.authorized_key = authorized_key

    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey" if self.authorized_key is not None else "password"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if (self.authorized_key is not None and username == self.username
                and key.get_base64() == self.authorized_key.get_base64()):
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED


def _channel_to_shell(channel_file: Any, shell_stdin: TapIO, replied: threading.Event,
                      running: threading.Event) -> None:
    """fakenos' channel_to_shell_tap (echo each byte, hand over each line) without its 10 ms
    pause per byte."""
    line = bytearray()
    while running.is_set():
        byte: bytes = channel_file.read(1)
        replied.wait(10)
        if not byte or not channel_file.channel.active:
            break
        try:
            if byte in (b"\r", b"\n"):
                channel_file.write(b"\r\n")
                line += byte
                shell_stdin.write(line.decode("utf-8", errors="replace"))
                line.clear()
                replied.clear()
            else:
                channel_file.write(byte)
                if byte != b"\x00":
                    line += byte
        except (OSError, EOFError):
            break


class FastSshServer(ParamikoSshServer):
    authorized_key: ClassVar[paramiko.PKey | None] = None

    def _bind_sockets(self) -> None:
        # fakenos listens only once its accept thread runs: a client connecting right after
        # start() would be refused.
        super()._bind_sockets()
        assert self._socket is not None
        self._socket.listen()

    def connection_function(self, client: socket.socket, is_running: threading.Event) -> None:
        replied, running = threading.Event(), threading.Event()
        running.set()
        helpers: list[threading.Thread] = []
        session = paramiko.Transport(client)
        with self._active_sessions_lock:
            self._active_sessions.add(session)
        try:
            session.add_server_key(self._ssh_server_key)
            session.start_server(server=_ServerInterface(
                self.authorized_key, ssh_banner=self.ssh_banner, username=self.username,
                password=self.password))
            channel = session.accept(timeout=30)
            if channel is None:
                return
            channel_file = channel.makefile("rw")
            shell_stdin, shell_stdout = TapIO(running), TapIO(running)
            for target, args in ((_channel_to_shell, (channel_file, shell_stdin, replied,
                                                      running)),
                                 (shell_to_channel_tap, (channel_file, shell_stdout, replied,
                                                         running))):
                helper = threading.Thread(target=target, args=args, daemon=True)
                helper.start()
                helpers.append(helper)
            shell = self.shell(stdin=shell_stdin, stdout=shell_stdout, nos=self.nos,
                               nos_inventory_config=self.nos_inventory_config,
                               is_running=is_running, **self.shell_configuration)
            watchdog = threading.Thread(target=self.watchdog,
                                        args=(is_running, running, session, shell), daemon=True)
            watchdog.start()
            helpers.append(watchdog)
            shell.start()
        except Exception as exc:  # a client that went away; the next one gets a new session
            LOG.debug("fake switch: SSH session ended: %s", exc)
        finally:
            running.clear()
            try:
                session.close()
            finally:
                with self._active_sessions_lock:
                    self._active_sessions.discard(session)
                self._join_connection_helper_threads(helpers)


# -- the switch ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeSwitch:
    """One fake switch of `vendor` (a driver name of the vlan network interface) listening for
    SSH on 127.0.0.1:`port`, its access ports named `ports`."""

    def __init__(self, vendor: str, ports: Iterable[str], name: str = "sw1",
                 username: str = "admin", password: str = "switch-password",
                 authorized_key: paramiko.PKey | None = None,
                 initial_vlans: dict[str, int] | None = None) -> None:
        if vendor not in SHELLS:
            raise ValueError(f"no fake switch for {vendor!r}; have {sorted(SHELLS)}")
        self.vendor = vendor
        self.name = name
        self.username = username
        self.password = password
        self.state = SwitchState(set(ports), dict(initial_vlans or {}))
        self._shell = type(f"{SHELLS[vendor].__name__}_{name}", (SHELLS[vendor],),
                           {"state": self.state, "username": username})
        self._server = type(f"FastSshServer_{name}", (FastSshServer,),
                            {"authorized_key": authorized_key})
        self._fakenos: FakeNOS | None = None
        self.port = 0

    def start(self) -> FakeSwitch:
        for attempt in range(START_RETRIES):  # another process may take the free port first
            self.port = _free_port()
            inventory = {
                "default": {"username": self.username, "password": self.password,
                            "server": {"plugin": "ParamikoSshServer",
                                       "configuration": {"address": "127.0.0.1"}},
                            "shell": {"plugin": "CMDShell", "configuration": {}}},
                "hosts": {self.name: {"port": self.port,
                                      "platform": FAKENOS_PLATFORMS[self.vendor]}},
            }
            net = FakeNOS(inventory=inventory)
            net.servers_plugins["ParamikoSshServer"] = self._server
            net.shell_plugins["CMDShell"] = self._shell
            try:
                net.start()
            except OSError:
                net.stop()
                if attempt == START_RETRIES - 1:
                    raise
                continue
            self._fakenos = net
            return self
        raise RuntimeError("unreachable")

    def stop(self) -> None:
        if self._fakenos is not None:
            self._fakenos.stop()
            self._fakenos = None

    def __enter__(self) -> FakeSwitch:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def sessions(self) -> list[list[str]]:
        with self.state.lock:
            return [list(lines) for lines in self.state.sessions]

    @property
    def port_vlans(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.port_vlans)

    @property
    def saved_vlans(self) -> dict[str, int] | None:
        with self.state.lock:
            return None if self.state.saved_vlans is None else dict(self.state.saved_vlans)

    def wait_sessions(self, count: int, timeout_s: float = 10.0) -> None:
        """Wait until `count` sessions have started (each runs in a server thread)."""
        _wait(lambda: len(self.sessions) >= count, timeout_s, f"{count} sessions on {self.name}")


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def public_key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def host_key() -> paramiko.PKey:
    """The SSH host key every fakenos server presents (fakenos ships one fixed key)."""
    from fakenos.plugins.servers.ssh_server_paramiko import DEFAULT_SSH_KEY

    return paramiko.RSAKey(file_obj=io.StringIO(DEFAULT_SSH_KEY))
