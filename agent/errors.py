"""The error a command fails with: its message is what the conductor shows as the node's error."""


class CommandError(RuntimeError):
    """A command failed for a reason the operator can act on; the message says which."""


class BadParams(CommandError):
    """The command's parameters are wrong; nothing was done."""
