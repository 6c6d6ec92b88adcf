"""Downloading pretrained weights into ``pretrained/`` (only when asked).

Nothing in tfmask downloads at run or test time on its own: ``tfmask
pretrained NAME`` (``make pretrained``) is the one command that does, and on a
machine without network it stops with a message saying what to fetch and
where to put it. Files are streamed to temporary names and renamed when
complete, so an interrupted download never leaves a truncated checkpoint.

Example::

    tfmask pretrained resnet50_imagenet --dest pretrained
    tfmask pretrained inception_resnet_v2_imagenet
"""

from __future__ import annotations

import shutil
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tfmask.atomic import atomic_path
from tfmask.errors import ConfigError, PathLike, TfmaskError


@dataclass(frozen=True)
class Checkpoint:
    """A downloadable checkpoint: where it lives and how a config uses it."""

    base_url: str
    files: Tuple[str, ...]
    prefix: str  # the checkpoint path a config names, relative to its folder
    usage: str


# Model Garden's ImageNet ResNet-50 (the init checkpoint of its own
# maskrcnn_resnetfpn_coco experiment), in the public cloud-tpu-checkpoints bucket.
CHECKPOINTS: Dict[str, Checkpoint] = {
    "resnet50_imagenet": Checkpoint(
        base_url="https://storage.googleapis.com/cloud-tpu-checkpoints/vision-2.0/"
                 "resnet50_imagenet/",
        files=("ckpt-28080.index", "ckpt-28080.data-00000-of-00001"),
        prefix="resnet50_imagenet/ckpt-28080",
        usage="fine_tune_checkpoint: \"../pretrained/resnet50_imagenet/ckpt-28080\" and "
              "fine_tune_checkpoint_type: \"classification\" in "
              "configs/mask_rcnn_resnet50_fpn_640x640.config"),
    # Keras Applications' ImageNet Inception-ResNet-v2 without the classifier;
    # tfmask's SAME-padded backbone loads it by layer name.
    "inception_resnet_v2_imagenet": Checkpoint(
        base_url="https://storage.googleapis.com/tensorflow/keras-applications/"
                 "inception_resnet_v2/",
        files=("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",),
        prefix="inception_resnet_v2_imagenet/"
               "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        usage="fine_tune_checkpoint: \"../pretrained/inception_resnet_v2_imagenet/"
              "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5\" and "
              "fine_tune_checkpoint_type: \"classification\" in "
              "configs/mask_rcnn_inception_resnet_v2_1024x1024.config"),
}


class DownloadError(TfmaskError):
    """A download failed (no network, server error); nothing was left behind."""


def download(name: str, dest: PathLike = "pretrained", base_url: Optional[str] = None,
             timeout_s: float = 30.0) -> List[Path]:
    """Downloads checkpoint ``name`` into ``DEST/<name>/``; returns the files.

    Files already present are kept (no re-download).

    Raises:
      ConfigError: unknown name (lists the valid ones).
      DownloadError: the network or server failed; says what to fetch by hand.
    """
    if name not in CHECKPOINTS:
        raise ConfigError(f"unknown pretrained checkpoint '{name}'; valid: "
                          f"{', '.join(sorted(CHECKPOINTS))}")
    ckpt = CHECKPOINTS[name]
    base = base_url or ckpt.base_url
    folder = Path(dest) / name
    out = []
    for file_name in ckpt.files:
        target = folder / file_name
        out.append(target)
        if target.exists():
            continue
        url = base.rstrip("/") + "/" + file_name
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response, \
                    atomic_path(target) as tmp, open(tmp, "wb") as f:
                shutil.copyfileobj(response, f, length=1 << 20)
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(
                f"cannot download {url}: {reason}. On a machine without network, fetch "
                f"{', '.join(base.rstrip('/') + '/' + f for f in ckpt.files)} elsewhere and "
                f"put them in {folder}/") from None
    return out
