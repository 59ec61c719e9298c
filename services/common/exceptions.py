"""Errors that reach API users. Each carries the HTTP status Ironic uses for it."""

from __future__ import annotations


class EnclumeError(Exception):
    code: int = 500
    retry_after_s: int | None = None  # the API's Retry-After header, for a 503 worth retrying

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Invalid(EnclumeError):
    code = 400


class Forbidden(EnclumeError):
    code = 403


class NotFound(EnclumeError):
    code = 404


class Conflict(EnclumeError):
    code = 409


class NotAcceptable(EnclumeError):
    code = 406


class TemporaryFailure(EnclumeError):
    code = 503


class NodeNotFound(NotFound):
    def __init__(self, ident: str) -> None:
        super().__init__(f"Node {ident} could not be found.")


class NodeLocked(Conflict):
    def __init__(self, node: str, host: str) -> None:
        super().__init__(
            f"Node {node} is locked by host {host}, please retry after the current operation "
            "is completed."
        )


class StaleUpdate(Conflict):
    """A write computed from values another writer changed since they were read (optimistic
    concurrency: the API reads, patches and tries again; 409 after a few attempts)."""

    @classmethod
    def of(cls, resource: str) -> StaleUpdate:
        return cls(f"{resource} was changed by another request while this one was being "
                   "applied; please retry.")


class InvalidStateRequested(Invalid):
    def __init__(self, action: str, node: str, state: str) -> None:
        super().__init__(
            f'The requested action "{action}" can not be performed on node "{node}" while it '
            f'is in state "{state}".'
        )


class NodeInMaintenance(Invalid):
    def __init__(self, op: str, node: str) -> None:
        super().__init__(
            f'The requested action "{op}" can not be performed on node "{node}" while it is '
            "in maintenance mode."
        )


class NoFreeConductorWorker(TemporaryFailure):
    def __init__(self) -> None:
        super().__init__("Requested action cannot be performed due to lack of free conductor "
                         "workers.")


# The class a status stands for, for an error whose own class this process does not know.
STATUS_CLASSES: dict[int, type[EnclumeError]] = {
    cls.code: cls for cls in (Invalid, Forbidden, NotFound, NotAcceptable, Conflict,
                              TemporaryFailure)}


def remote_error(kind: str | None, message: str, code: int) -> EnclumeError:
    """The error another process (a conductor answering an RPC call) raised, as the class it
    raised, so that callers catch the same classes locally and remotely.

    ``kind`` is the class's name: a class of that name this process has loaded, else the class
    of the status (409 Conflict, 503 TemporaryFailure...), else EnclumeError. An answer naming
    no class (the RPC layer's own refusals) stays an EnclumeError. The status and the message
    are the remote ones; the class's ``__init__`` is not run (it takes other arguments, or
    logs what the remote side already logged)."""
    cls = EnclumeError
    if kind is not None:
        cls = _loaded_class(kind) or STATUS_CLASSES.get(code, EnclumeError)
    error = cls.__new__(cls, message)
    EnclumeError.__init__(error, message, code)
    return error


def _loaded_class(name: str) -> type[EnclumeError] | None:
    """The one EnclumeError class of that name among those imported (None: none, or several)."""
    found: set[type[EnclumeError]] = set()
    pending: list[type[EnclumeError]] = [EnclumeError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            found.add(cls)
        pending.extend(cls.__subclasses__())
    return found.pop() if len(found) == 1 else None


# How each database names the unique key of a port's name in its error (SQLite, PostgreSQL and
# MySQL with migration 0022's constraint).
PORT_NAME_KEYS = ("ports.name", "uniq_ports0name", "ports_name_key")


def conflict_from_integrity(exc: Exception, values: dict[str, object],
                            kind: str = "port") -> Conflict:
    """Turn a unique-constraint violation (SQLite or PostgreSQL) into Ironic's 409 message
    (``kind``: "port" or "portgroup", whose MAC, name and UUID it names)."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "address" in text:
        return Conflict(f"A {kind} with MAC address {values.get('address')} already exists.")
    if kind == "portgroup" and ("name" in text or "uuid" in text):
        field = "name" if "name" in text else "UUID"
        return Conflict(f"A portgroup with {field} {values.get(field.lower())} already "
                        "exists.")
    if kind == "port" and any(key in text for key in PORT_NAME_KEYS):  # API 1.88
        return Conflict(f"A port with name {values.get('name')} already exists.")
    if "instance_uuid" in text:
        return Conflict(f"Instance {values.get('instance_uuid')} is already associated with a "
                        "node.")
    if "name" in text:
        return Conflict(f"A resource with name {values.get('name')} already exists.")
    if "uuid" in text:
        return Conflict(f"A resource with UUID {values.get('uuid')} already exists.")
    return Conflict("The request conflicts with an existing resource.")


class DriverError(Exception):
    """A driver could not do what it was asked; the message is shown to the user."""
