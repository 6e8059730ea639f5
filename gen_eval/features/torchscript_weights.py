"""The tensors of a TorchScript archive (OpenAI's CLIP ``.pt`` files) without loading it as TorchScript.

``torch.jit.load`` (what OpenAI's ``clip`` package and torch-fidelity call) compiles the code
stored in the archive and runs its ``__setstate__`` methods, and ``torch.load(weights_only=True)``
refuses TorchScript archives outright. The archive's ``data.pkl`` is an ordinary pickle of the
module tree, so it is read here with ``torch``'s own weights-only unpickler
(``torch._weights_only_unpickler``: tensor rebuilders, storages and plain containers only), with
two additions: the ``__torch__.*`` names of the scripted modules resolve to :class:`ScriptedModule`,
an inert record of the attributes pickle gives it, and TorchScript's list builders
(``torch.jit._pickle.build_intlist``...) to an identity function. Any other name is refused
before anything is called; the ``code/`` folder is never read.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["ScriptedModule", "is_torchscript_archive", "read_torchscript_tensors"]


class ScriptedModule:
    """Stands in for a scripted module while unpickling: keeps its attribute dict, runs nothing."""

    def __init__(self, *args: object) -> None:
        self.attributes: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.attributes = dict(state) if isinstance(state, dict) else {}


def _same(data: Any, *_: object) -> Any:
    return data


# TorchScript's list builders and type tags (torch.jit._pickle) return their argument unchanged;
# they resolve to this module's own identity function, never to the named code.
_LIST_BUILDERS = [
    f"torch.jit._pickle.{name}"
    for name in (
        "build_intlist",
        "build_tensorlist",
        "build_doublelist",
        "build_boollist",
        "restore_type_tag",
    )
]


def is_torchscript_archive(path: Path) -> bool:
    """Whether ``path`` is a zip holding a TorchScript ``code/`` folder and a ``data.pkl``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/data.pkl") for n in names) and any("/code/" in n for n in names)


def _load_pickle(archive: zipfile.ZipFile, prefix: str, data: bytes) -> Any:
    import io

    from torch import _weights_only_unpickler as weights_only

    # The scripted modules' names (``__torch__.clip.model.CLIP``...) are read from the pickle
    # first and each mapped to the inert ScriptedModule; every other name stays refused.
    names = {n for n in weights_only.get_globals_in_pkl(io.BytesIO(data)) if n.startswith("__torch__.")}
    unpickler = weights_only.Unpickler(io.BytesIO(data), encoding="utf-8")

    def persistent_load(saved_id: Any) -> Any:
        # ("storage", storage type, key, location, numel): the bytes live in <prefix>data/<key>.
        if not (isinstance(saved_id, tuple) and len(saved_id) == 5):
            raise pickle.UnpicklingError(f"persistent id {saved_id!r}")
        _, storage_type, key, _, _ = saved_id
        dtype = storage_type.dtype if hasattr(storage_type, "dtype") else storage_type
        raw = archive.read(f"{prefix}data/{key}")
        storage = torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8) if raw else torch.UntypedStorage(0)
        return torch.storage.TypedStorage(wrap_storage=storage, dtype=dtype, _internal=True)

    unpickler.persistent_load = persistent_load
    allowed = [(ScriptedModule, name) for name in sorted(names)] + [(_same, name) for name in _LIST_BUILDERS]
    with torch.serialization.safe_globals(allowed):
        return unpickler.load()


def read_torchscript_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor attribute of the archive's module tree, by dotted name (like ``state_dict()``).

    Raises
    ------
    pickle.UnpicklingError, zipfile.BadZipFile, KeyError
        On a name outside the allow-list, a broken archive or a missing storage; the caller turns
        these into a one-line error.
    """
    with zipfile.ZipFile(path) as archive:
        data_name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        prefix = data_name[: -len("data.pkl")]
        root = _load_pickle(archive, prefix, archive.read(data_name))
        tensors: dict[str, torch.Tensor] = {}

        def walk(node: Any, name: str) -> None:
            if isinstance(node, torch.Tensor):
                tensors[name] = node.clone()  # own memory: the zip's bytes go away
            elif isinstance(node, ScriptedModule):
                for key, value in node.attributes.items():
                    walk(value, f"{name}.{key}" if name else key)

        walk(root, "")
    return tensors
