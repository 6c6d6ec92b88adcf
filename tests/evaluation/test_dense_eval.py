"""Dense scenes in COCO evaluation: more than 100 objects per image are not capped at
pycocotools' default maxDets of 100; the raised limit is named in the output."""

from __future__ import annotations

import numpy as np

from tfmask.data import coco
from tfmask.evaluation.coco_eval import COCO_MAX_DETS, evaluate_coco
from tfmask.evaluation.outputs import format_table

N = 150  # objects in the one image


def _dense():
    """One 300x450 image with N 10x10 squares on a grid; perfect detections of them all."""
    images = [{"id": 1, "file_name": "shelf.jpg", "height": 300, "width": 450}]
    anns, dets = [], []
    for i in range(N):
        y, x = 20 * (i // 15) + 5, 30 * (i % 15) + 5
        mask = np.zeros((300, 450), bool)
        mask[y:y + 10, x:x + 10] = True
        rle = coco.encode_rle(mask)
        anns.append({"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [x, y, 10, 10],
                     "area": 100.0, "iscrowd": 0, "segmentation": rle})
        dets.append({"image_id": 1, "category_id": 1, "bbox": [x, y, 10, 10],
                     "score": 0.5 + 0.4 * i / N, "segmentation": rle})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "bottle"}]}
    return gt, dets


def test_more_than_100_detections_per_image_are_all_counted():
    gt, dets = _dense()
    result = evaluate_coco(gt, dets)
    assert result.max_detections == N
    assert "most detections of one image" in result.max_detections_reason
    for iou_type in ("bbox", "segm"):
        stats = result.metrics[iou_type].stats
        assert stats["AP"] == 1.0 and stats[f"AR{N}"] == 1.0 and "AR100" not in stats
        assert result.metrics[iou_type].per_class["bottle"] == 1.0
    table = format_table(result)
    assert f"maxDets raised from COCO's 100 to the most detections of one image" in table


def test_pycocotools_default_would_cap_them():
    """What the raise avoids: at maxDets 100 the 50 best-scoring objects are never matched."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, dets = _dense()
    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    ev = COCOeval(coco_gt, coco_gt.loadRes(dets), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[8] < 0.7  # AR100: 100 of the 150


def test_the_models_limit_is_used_and_named():
    gt, dets = _dense()
    result = evaluate_coco(gt, dets[:40], max_detections=300)
    assert result.max_detections == 300 and "AR300" in result.metrics["bbox"].stats
    assert result.to_dict()["max_detections"] == 300
    assert "to the model's detection limit" in format_table(result)
    small = evaluate_coco(gt, dets[:40])
    assert small.max_detections == COCO_MAX_DETS and "AR100" in small.metrics["bbox"].stats
    assert "maxDets" not in format_table(small)
