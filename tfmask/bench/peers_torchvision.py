"""The torchvision side of ``tfmask bench`` section ``peers``, in its own process.

:func:`run_torchvision` writes the spec that :func:`tfmask.bench.peers.run`
builds (settings, torchvision's constructor arguments, image and training
example files) and runs this module on it, so that torch's thread pool never
meets TensorFlow's::

    python -m tfmask.bench.peers_torchvision SPEC.json OUT.json

:func:`torchvision_worker` builds ``maskrcnn_resnet50_fpn`` (v1) from random
weights (nothing is downloaded), times inference at each batch size of
:func:`batch_runs` and the training step (SGD with momentum, one example held
in memory), in float32 and, with ``spec['bfloat16']``, under CPU autocast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np

TORCHVISION_KEYS = (
    "num_classes", "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test",
    "rpn_pre_nms_top_n_train", "rpn_post_nms_top_n_train", "rpn_nms_thresh",
    "rpn_batch_size_per_image", "rpn_positive_fraction", "box_batch_size_per_image",
    "box_positive_fraction", "box_nms_thresh", "box_detections_per_img", "box_score_thresh")


def batch_runs(cfg: dict) -> List[Tuple[int, int]]:
    """[(batch size, timed runs)] from the settings' ``runs_b<N>`` keys, smallest first."""
    return sorted((int(key[len("runs_b"):]), int(runs)) for key, runs in cfg.items()
                  if key.startswith("runs_b"))


def timed(fn, runs: int, warmup: int) -> List[float]:
    """Seconds of each of ``runs`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _torchvision_model(tv: dict, min_max_size):
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    # weights_backbone=None: nothing is downloaded (random weights, as tfmask's side).
    return maskrcnn_resnet50_fpn(weights=None, weights_backbone=None,
                                 min_size=min_max_size[0], max_size=min_max_size[1],
                                 **{k: tv[k] for k in TORCHVISION_KEYS})


def _inference(model, images, cfg: dict, precision: str) -> dict:
    """``{precision}_b{N}_ms`` and ``{precision}_b{N}_detections`` per batch size N."""
    import torch

    result = {}
    for batch, runs in batch_runs(cfg):
        counts = []

        def once():
            with torch.inference_mode(), torch.autocast(
                    "cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
                out = model(images[:batch])
            counts.append(float(np.mean([len(o["scores"]) for o in out])))
        times = timed(once, runs, cfg["warmup"])
        key = f"{precision}_b{batch}"
        result[f"{key}_ms"] = [round(1000 * t, 1) for t in times]
        result[f"{key}_detections"] = counts[-1]
    return result


def _training(tv: dict, example: dict, cfg: dict, precision: str = "float32") -> List[float]:
    """Seconds per steady-state training step on one example held in memory; ``bfloat16``:
    the forward pass and losses under CPU autocast (torch's mixed precision)."""
    import torch

    model = _torchvision_model(tv, tv["train_min_max_size"]).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    image = torch.from_numpy(np.load(example["image"])).permute(2, 0, 1).float() / 255.0
    target = {"boxes": torch.tensor(example["boxes_xyxy_px"], dtype=torch.float32),
              "labels": torch.tensor(example["labels"], dtype=torch.int64),
              "masks": torch.from_numpy(np.load(example["masks"]).astype(np.uint8))}

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            losses = model([image], [target])
            loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return timed(step, cfg["train_steps"], cfg["train_warmup"])


def torchvision_worker(spec: dict) -> dict:
    """Latency (each batch size, float32 and, with ``spec['bfloat16']``, CPU autocast) and
    training step seconds of torchvision's Mask R-CNN; ``spec`` as
    :func:`tfmask.bench.peers.run` writes it."""
    import torch
    import torchvision

    torch.set_num_threads(spec["threads"])
    cfg, tv = spec["settings"], spec["torchvision"]
    images = [torch.from_numpy(np.load(p)).permute(2, 0, 1).float() / 255.0
              for p in spec["images"]]
    result = {"torch": torch.__version__, "torchvision": torchvision.__version__,
              "threads": torch.get_num_threads(),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "mkldnn": bool(torch.backends.mkldnn.is_available())}
    model = _torchvision_model(tv, tv["infer_min_max_size"]).eval()
    for precision in ["float32"] + (["bfloat16"] if spec["bfloat16"] else []):
        result.update(_inference(model, images, cfg, precision))
    result["train_step_s"] = [round(t, 4) for t in
                              _training(tv, spec["train_example"], cfg)]
    if spec["bfloat16"]:
        result["bfloat16_train_step_s"] = [round(t, 4) for t in _training(
            tv, spec["train_example"], cfg, "bfloat16")]
    return result


def run_torchvision(spec: dict, work_dir: Path) -> dict:
    """:func:`torchvision_worker` of ``spec`` in a fresh Python process."""
    spec_path, out_path = work_dir / "torchvision_spec.json", work_dir / "torchvision.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    if out_path.exists():
        out_path.unlink()
    done = subprocess.run([sys.executable, "-m", "tfmask.bench.peers_torchvision",
                           str(spec_path), str(out_path)], capture_output=True, text=True)
    if done.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"torchvision run failed:\n{(done.stderr or done.stdout)[-3000:]}")
    return json.loads(out_path.read_text())


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tfmask.bench.peers_torchvision SPEC.json OUT.json",
              file=sys.stderr)
        return 2
    result = torchvision_worker(json.loads(Path(argv[0]).read_text()))
    Path(argv[1]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
