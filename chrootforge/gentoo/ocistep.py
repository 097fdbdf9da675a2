"""The OCI operations of a build, run in the mapped user namespace (files belong to sub-ids).

    python -m chrootforge.gentoo.ocistep REQUEST.json

REQUEST: {"op": "commit"|"unpack", ...}; the reply (JSON) is written to request["reply"].
The build calls `run(request, idmap)`, which starts this module under run_mapped so that the uids it
stats (commit) or creates (unpack) are the image's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from chrootforge.errors import CfError


def run(request: dict, idmap, workdir: Path) -> dict:
    from chrootforge.sandbox import run_module_mapped

    workdir.mkdir(parents=True, exist_ok=True)
    fd, req_path = tempfile.mkstemp(prefix="ocistep.", suffix=".json", dir=workdir)
    reply = Path(req_path + ".reply")
    request = dict(request, reply=str(reply))
    with os.fdopen(fd, "w") as handle:
        json.dump(request, handle)
    try:
        code = run_module_mapped("chrootforge.gentoo.ocistep", [req_path], idmap)
        data = json.loads(reply.read_text()) if reply.exists() else {}
    finally:
        for p in (Path(req_path), reply):
            p.unlink(missing_ok=True)
    if code != 0 or "error" in data:
        raise CfError(f"{request['op']} failed: {data.get('error', f'exit status {code}')}",
                      hint=data.get("hint"))
    return data


def _oci(name: str):
    """chrootforge.oci's function `name` (exported by the package, or from its module of that name)."""
    import importlib
    import types

    from chrootforge import oci

    func = getattr(oci, name, None)
    if func is None or isinstance(func, types.ModuleType):
        for module in (name, "commit", "unpack"):
            try:
                func = getattr(importlib.import_module(f"chrootforge.oci.{module}"), name, None)
            except ImportError:
                func = None
            if callable(func) and not isinstance(func, types.ModuleType):
                break
    if not callable(func) or isinstance(func, types.ModuleType):
        raise CfError(f"chrootforge.oci has no {name}()")
    return func


def _commit(req: dict) -> dict:
    result = _oci("commit")(req["rootfs"], req["layout"], req["tags"][0], parent=req.get("parent"),
                            compression=req["compression"], config=req["config"], labels=req.get("labels"),
                            history=req.get("history"), quiet=True)
    for extra in req["tags"][1:]:
        _oci("tag")(req["layout"], req["tags"][0], extra)
    return {"digest": str(getattr(result, "digest", result))}


def _unpack(req: dict) -> dict:
    _oci("unpack")(req["layout"], req["tag"], req["dest"])
    return {}


def main(argv: list[str]) -> int:
    req = json.loads(Path(argv[0]).read_text())
    try:
        result = {"commit": _commit, "unpack": _unpack}[req["op"]](req)
        code = 0
    except CfError as err:
        result, code = {"error": str(err), "hint": err.hint}, 1
    except Exception as err:  # noqa: BLE001 - reported to the parent as one line
        result, code = {"error": f"{type(err).__name__}: {err}"}, 1
    Path(req["reply"]).write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
