"""Downloading pretrained weights into ``pretrained/`` (only when asked).

Nothing in tfmask downloads at run or test time on its own: ``tfmask
pretrained NAME`` (``make pretrained``) is the one command that does, and on a
machine without network it stops with a message saying what to fetch and
where to put it. Files are streamed to temporary names and renamed when
complete, so an interrupted download never leaves a truncated checkpoint.

Files with a published SHA-256 are checked as they stream (and when already
present); a mismatch leaves nothing behind. torchvision's COCO Mask R-CNN
weights are then converted into a tfmask checkpoint folder
(:mod:`tfmask.modeling.torchvision.download`).

Example::

    tfmask pretrained resnet50_imagenet --dest pretrained
    tfmask pretrained inception_resnet_v2_imagenet
    tfmask pretrained torchvision_maskrcnn_resnet50_fpn_v2_coco
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tfmask.atomic import atomic_path
from tfmask.errors import ConfigError, DataError, PathLike, TfmaskError


@dataclass(frozen=True)
class Checkpoint:
    """A downloadable checkpoint: where it lives and how a config uses it."""

    base_url: str
    files: Tuple[str, ...]
    prefix: str  # the checkpoint path a config names, relative to its folder
    usage: str
    sha256: Tuple[str, ...] = ()  # per file, when published; checked on download
    size_mb: float = 0.0  # download size (MB, 10**6 bytes), when known


_TV_USAGE = ('fine_tune_checkpoint: "../pretrained/{name}/ckpt-0" and fine_tune_checkpoint_type: '
             '"detection" in configs/mask_rcnn_resnet50_fpn_coco_finetune{v2}.config; the full '
             'COCO model: tfmask export --pipeline-config-path pretrained/{name}/pipeline.config '
             '--trained-checkpoint-dir pretrained/{name} --export-dir OUT')


def _torchvision(v2: str, file_name: str, sha256: str, size_mb: float) -> Checkpoint:
    """torchvision's COCO Mask R-CNN R50-FPN (``v2``: "" or "_v2") as a download.

    The ``.pth`` is converted into ``torchvision_maskrcnn_resnet50_fpn{v2}_coco/ckpt-0``.
    """
    name = f"torchvision_maskrcnn_resnet50_fpn{v2}_coco"
    return Checkpoint(base_url="https://download.pytorch.org/models/", files=(file_name,),
                      prefix=f"{name}/ckpt-0", usage=_TV_USAGE.format(name=name, v2=v2),
                      sha256=(sha256,), size_mb=size_mb)


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
    # torchvision's COCO-trained Mask R-CNN R50-FPN (MaskRCNN_ResNet50_FPN[_V2]_Weights.COCO_V1),
    # converted without torch by tfmask.modeling.torchvision.download into pretrained/NAME/.
    "torchvision_maskrcnn_resnet50_fpn_coco": _torchvision(
        "", "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
        "bf2d0c1efbc936eeee2bc95a48e80ebc86b891f61b0106485937fc29f9315fc0", size_mb=178.1),
    "torchvision_maskrcnn_resnet50_fpn_v2_coco": _torchvision(
        "_v2", "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
        "73cbd0190fcbe3ba339921fbce2c3a0b6bb9126c9a133c85e43a2a8e060a109e", size_mb=185.8),
}


class DownloadError(TfmaskError):
    """A download failed (no network, server error); nothing was left behind."""


def sha256_of(path: PathLike) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: PathLike, expected: str, url: str, name: Optional[PathLike] = None,
                 advice: str = "delete it and download again") -> None:
    """Raises DataError (about ``name``, default ``path``) when ``path``'s SHA-256 is
    not ``expected``, the digest published for ``url``."""
    got = sha256_of(path)
    if got != expected:
        raise DataError(name or path, f"SHA-256 {got} is not the published {expected} of "
                        f"{url}: a different or damaged file; {advice}")


def download(name: str, dest: PathLike = "pretrained", base_url: Optional[str] = None,
             timeout_s: float = 30.0) -> List[Path]:
    """Downloads checkpoint ``name`` into ``DEST/<name>/``; returns the files.

    Files already present are kept (no re-download).

    Raises:
      ConfigError: unknown name (lists the valid ones).
      DownloadError: the network or server failed; says what to fetch by hand.
      DataError: a file's SHA-256 is not the published one (nothing is kept).
    """
    if name not in CHECKPOINTS:
        raise ConfigError(f"unknown pretrained checkpoint '{name}'; valid: "
                          f"{', '.join(sorted(CHECKPOINTS))}")
    ckpt = CHECKPOINTS[name]
    base = base_url or ckpt.base_url
    folder = Path(dest) / name
    out = []
    for i, file_name in enumerate(ckpt.files):
        target = folder / file_name
        out.append(target)
        url = base.rstrip("/") + "/" + file_name
        expected = ckpt.sha256[i] if ckpt.sha256 else None
        if target.exists():
            if expected:
                check_sha256(target, expected, url)
            continue
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response, \
                    atomic_path(target) as tmp:
                with open(tmp, "wb") as f:
                    shutil.copyfileobj(response, f, length=1 << 20)
                if expected:  # a mismatch raises here: the temporary file goes
                    check_sha256(tmp, expected, url, name=target,
                                 advice="nothing was kept (try again, or another --base-url)")
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(
                f"cannot download {url}: {reason}. On a machine without network, fetch "
                f"{', '.join(base.rstrip('/') + '/' + f for f in ckpt.files)} elsewhere and "
                f"put them in {folder}/") from None
    return out
