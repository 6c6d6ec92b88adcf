"""supporting_scripts/inference.ipynb runs headlessly on an export and shows overlays."""

from __future__ import annotations

from pathlib import Path

import export_testlib as lib
from notebook_kernel import use_this_interpreter

NOTEBOOK = lib.ROOT / "supporting_scripts" / "inference.ipynb"


def test_notebook_is_clean_and_parameterized():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])


def test_notebook_shows_each_test_image_with_its_detections(tmp_path, tmp_path_factory,
                                                              monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    export_dir, _ = lib.exported(tmp_path_factory, "image_tensor", True)
    images = lib.dataset(tmp_path_factory) / "data" / "test_images"
    use_this_interpreter(tmp_path, monkeypatch)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = f"EXPORT_DIR = {str(export_dir)!r}\nIMAGES = {str(images)!r}\nMIN_SCORE = 0.3"
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(lib.ROOT / "supporting_scripts")}}
                   ).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream")
    shown = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if "image/png" in o.get("data", {})]
    names = sorted(p.name for p in Path(images).iterdir())
    assert f"{len(names)} images in {images}" in text
    assert all(f"{n}: " in text for n in names), text
    assert len(shown) == len(names)
