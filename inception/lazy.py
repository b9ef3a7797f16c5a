"""Packages that load their modules on first use (PEP 562): importing ``inception.train`` or
``inception.data`` loads nothing else, so their pure-Python configs (``train.config``,
``data.config``) are read without TensorFlow, and ``train.run`` still works."""

import importlib


def exports(package, homes, namespace):
    """The package's ``__getattr__`` and ``__dir__``: each public name of ``homes`` (name -> the
    submodule that defines it) and any submodule (``train.rundir``), loaded when first used."""

    def __getattr__(name):
        if name in homes:
            return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        if not name.startswith("_"):
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
