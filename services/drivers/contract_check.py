"""How services/drivers/base.py checks an implementation against its interface's contract
when the class is defined: one contract, and no public method the contract does not declare."""

from __future__ import annotations

import inspect


class ContractError(TypeError):
    """An implementation does not match its interface's contract."""


def _contract_names(cls: type, contracts_module: str) -> set[str]:
    return {name for klass in cls.__mro__ if klass.__module__ == contracts_module
            for name in vars(klass) if not name.startswith("_")}


def check_class(cls: type, contracts_module: str, root: type) -> None:
    """``cls``, an implementation, against the contracts of ``contracts_module`` (subclasses
    of ``root``, the base of every interface); ContractError when it does not match."""
    contracts = [klass for klass in cls.__mro__[1:]
                 if klass.__module__ == contracts_module and klass is not root
                 and issubclass(klass, root)]
    if len({c for c in contracts if root in c.__bases__}) > 1:
        raise ContractError(f"{cls.__qualname__} implements more than one interface.")
    declared = _contract_names(cls, contracts_module) | {
        name for name in vars(root) if not name.startswith("_")}
    for klass in cls.__mro__:
        if klass.__module__ == contracts_module or klass in (root, object):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in declared:
                continue
            if inspect.isfunction(value) or isinstance(value, staticmethod | classmethod):
                contract = contracts[0].__name__ if contracts else "Interface"
                raise ContractError(
                    f"{cls.__qualname__}.{name} is not a method of {contract}: a misspelt "
                    f"name would never be called. Declare it in services/drivers/base.py or "
                    f"make it private (_{name}).")
