"""``tfmask pretrained torchvision_maskrcnn_resnet50_fpn[_v2]_coco``: download, check, convert.

The ``.pth`` is downloaded atomically into ``DEST/downloads/NAME/`` and its
SHA-256 checked against the published digest (:mod:`tfmask.modeling.pretrained`),
or taken from ``--from FILE`` (a copy fetched by hand on another machine, checked
the same way). It is then converted (:func:`.convert.convert_pth`) into
``DEST/NAME/``: ``ckpt-0``, ``pipeline.config`` and ``label_map.pbtxt`` of the
full COCO model, and ``conversion.json``. torch is not needed.

:data:`PUBLISHED` holds torchvision's own COCO val2017 figures for these weights
(``MaskRCNN_ResNet50_FPN[_V2]_Weights.COCO_V1.meta["_metrics"]``); tfmask
reproduces the network's outputs (tests/modeling/torchvision/), not these APs:
COCO is not evaluated here.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Dict, Optional

from tfmask.errors import ConfigError, PathLike
from tfmask.modeling.pretrained import CHECKPOINTS, DownloadError, check_sha256, download

VERSIONS: Dict[str, str] = {"torchvision_maskrcnn_resnet50_fpn_coco": "v1",
                            "torchvision_maskrcnn_resnet50_fpn_v2_coco": "v2"}
PUBLISHED: Dict[str, Dict[str, float]] = {
    "torchvision_maskrcnn_resnet50_fpn_coco": {"box_ap": 37.9, "mask_ap": 34.6},
    "torchvision_maskrcnn_resnet50_fpn_v2_coco": {"box_ap": 47.4, "mask_ap": 41.8},
}
SOURCE = ("torchvision 0.29 weight enums MaskRCNN_ResNet50_FPN_Weights / "
          "MaskRCNN_ResNet50_FPN_V2_Weights (COCO_V1, COCO-val2017)")


def fetch_and_convert(name: str, dest: PathLike = "pretrained", source: Optional[PathLike] = None,
                      base_url: Optional[str] = None, timeout_s: float = 30.0) -> dict:
    """Downloads (or takes ``source``), checks and converts torchvision weights ``name``.

    Returns:
      The conversion record (``DEST/NAME/conversion.json``) plus ``peak_rss_mb``.

    Raises:
      ConfigError: ``name`` is not one of :data:`VERSIONS`.
      DownloadError: no network: says what to fetch and the ``--from`` command.
      DataError: a SHA-256 mismatch, or a file that is not these weights.
    """
    from tfmask.modeling.torchvision.convert import convert_pth

    if name not in VERSIONS:
        raise ConfigError(f"'{name}' is not a torchvision checkpoint; valid: "
                          f"{', '.join(sorted(VERSIONS))}")
    ckpt = CHECKPOINTS[name]
    url = ckpt.base_url + ckpt.files[0]
    if source is not None:
        check_sha256(source, ckpt.sha256[0], url,
                     advice=f"download {url} again")
        pth = Path(source)
    else:
        try:
            pth = download(name, Path(dest) / "downloads", base_url, timeout_s)[0]
        except DownloadError as exc:
            raise DownloadError(
                f"{exc}. Or fetch it on a machine with network ({ckpt.size_mb:.0f} MB) and "
                f"run: tfmask pretrained {name} --from "
                f"{ckpt.files[0]}") from None
    record = convert_pth(pth, Path(dest) / name, VERSIONS[name], sha256=ckpt.sha256[0])
    record["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return record
