"""Once-per-session set-up of the torchvision tests: references, conversions, models.

* :func:`reference` runs ``torch_reference.py`` in a subprocess (torch never
  shares a process with TensorFlow here): torchvision's model with seeded random
  weights, its ``weights.pth`` and ``reference.npz`` outputs;
* :func:`converted` converts that ``.pth`` with tfmask's converter (no torch);
* :func:`restored` builds the converted folder's model as the exporter does.

Plain memoized functions rather than a conftest.py (see ``tests/export_testlib.py``).
torch is a test dependency (the ``peers`` extra): without it these fail, not skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from session_testlib import per_session

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "torch_reference.py"
MIN_SIZE, MAX_SIZE = 160, 256  # small: the batch pads to 224 x 224
PROPOSALS = 200  # torchvision's 1000 would cost the v2 box head's convs 5x the time


@per_session
def reference(factory, version: str) -> Path:
    """``weights.pth`` and ``reference.npz`` of torchvision's ``version`` model."""
    out = factory.mktemp(f"torchvision_{version}")
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--version", version, "--out", str(out),
                           "--min-size", str(MIN_SIZE), "--max-size", str(MAX_SIZE),
                           "--proposals", str(PROPOSALS)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"torchvision reference failed:\n{proc.stderr[-3000:]}"
    return out


@per_session
def converted(factory, version: str):
    """``(folder, record)``: the reference weights converted by tfmask."""
    from tfmask.modeling.torchvision.convert import convert_pth

    folder = reference(factory, version) / "converted"
    record = convert_pth(reference(factory, version) / "weights.pth", folder, version,
                         min_dimension=MIN_SIZE, max_dimension=MAX_SIZE)
    return folder, record


@per_session
def restored(factory, version: str):
    """``(model, params, preprocessing)`` of the converted folder, built as the exporter does."""
    from tfmask.config.translate import translate
    from tfmask.export.exporter import restore_model
    from tfmask.export.serving import Preprocessing

    folder, _ = converted(factory, version)
    params = translate(folder / "pipeline.config").params
    params.task.model.roi_generator.test_num_proposals = PROPOSALS
    model = restore_model(params, str(folder / "ckpt-0"))
    return model, params, Preprocessing.from_model_config(params.task.model)
