"""``python -m faultlab.learn.preflight FILE``: import the learner's file once, outside the server, and say in one
JSON line whether it defines an ASGI ``app``, or where and why it fails (the line in *their* file).

It runs in a process of its own, as the server would import the file, so an error shows as the learner's
file, line and message instead of the lab's traceback. No bytecode is written next to the file.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path

MODULE = "faultlab_learner"


def _line_in(path: Path, exc: BaseException) -> int | None:
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        return exc.lineno
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == str(path)]
    return frames[-1].lineno if frames else None


def inspect(path: Path) -> dict[str, object]:
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:
        return {"line": None, "message": "not a Python file"}
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # whatever the learner's code raises is the learner's to see
        text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        return {"line": _line_in(path, exc), "message": f"{type(exc).__name__}: {text}".strip()}
    app = getattr(module, "app", None)
    if app is None:
        return {"line": None, "message": "defines no `app`: keep the line that builds it (app = create_app(...))"}
    if not callable(app):
        return {"line": None, "message": f"`app` is a {type(app).__name__}, not an ASGI app such as create_app()'s"}
    return {"ok": True}


if __name__ == "__main__":
    print(json.dumps(inspect(Path(sys.argv[1]))))
