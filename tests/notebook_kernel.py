"""Running the supporting notebooks headlessly with this interpreter's kernel."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def use_this_interpreter(tmp_path: Path, monkeypatch) -> None:
    """Makes kernel ``python3`` this interpreter (so it imports this tfmask).

    A kernelspec in ``tmp_path`` comes ahead of any other (``JUPYTER_PATH`` is
    searched first); matplotlib uses the inline backend, so figures become PNG
    outputs the tests can count.
    """
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tfmask tests)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("MPLBACKEND", raising=False)
