"""The services: the use cases the commands and the web app call, on the storage layer."""

from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, home: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A PEP 562 `__getattr__` for `package`: a name of `home` (name -> the module of the package that defines
    it) is imported with its module on first access, then kept in the package's `namespace`. A command that
    uses one service of a package so loads that module alone."""

    def __getattr__(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
