"""Loads garrison_moto_ext once moto's server module has loaded, so that only the emulator
pays for importing moto's EC2 backend (a .pth file imports this at every interpreter start
of the emulator's virtualenv)."""

import importlib.abc
import sys

_TARGET = "moto.server"


class _AfterMotoServer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            import garrison_moto_ext  # noqa: F401  (patches moto's EC2 backend)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterMotoServer())
