"""tfmask's torchvision Mask R-CNN computes torchvision's numbers (v1 and v2, float32).

torchvision's model with seeded random weights runs in a subprocess
(``torch_reference.py``); its ``state_dict`` goes through tfmask's converter
(no torch) and the model is built as the exporter builds it. Each stage is
compared on the same inputs, so an error shows where it starts:

* preprocessing (``GeneralizedRCNNTransform``: normalize, resize, batch padding);
* FPN features and RPN head outputs, relative to the largest magnitude;
* proposals (anchors, decoding, clipping, per-level NMS);
* the box head and mask head on torchvision's own boxes (ROI align included);
* end to end through the export's ``detect``: boxes (input pixels), scores,
  classes and pasted masks (IoU of the 0.5-thresholded masks).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from torchvision_testlib import converted, reference, restored

VERSIONS = ("v1", "v2")
TOL_REL = 1e-4  # features, RPN, heads: max |diff| / max |torchvision|
TOL_BOX_PX, TOL_SCORE, MIN_MASK_IOU = 0.5, 1e-3, 0.99


def _nhwc(a):
    return a.transpose(0, 2, 3, 1)


def _rel(ours, theirs) -> float:
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def _yx(deltas_or_boxes, axis_len=4):
    """(x, y, x, y)-ordered groups of 4 on the last axis -> (y, x, y, x)."""
    a = np.asarray(deltas_or_boxes)
    shape = a.shape
    return a.reshape(*shape[:-1], shape[-1] // 4, 4)[..., [1, 0, 3, 2]].reshape(shape)


@pytest.fixture(scope="module", params=VERSIONS)
def case(request, tmp_path_factory):
    version = request.param
    ref = np.load(reference(tmp_path_factory, version) / "reference.npz")
    model, params, prep = restored(tmp_path_factory, version)
    return version, ref, model, prep


def test_conversion_assigns_every_tensor(case, tmp_path_factory):
    version, _, model, _ = case
    folder, record = converted(tmp_path_factory, version)
    assert record["assigned"] == len(model.torch_params()) == len(model.variables)
    assert record["tensors"] == record["assigned"] + len(record["ignored"])
    assert all(k.endswith("num_batches_tracked") for k in record["ignored"])
    assert {p.name for p in folder.iterdir()} >= {"ckpt-0.index", "checkpoint",
                                                 "pipeline.config", "label_map.pbtxt",
                                                 "conversion.json"}


def test_preprocessing_features_rpn_heads(case):
    version, ref, model, prep = case
    images = [ref[f"images_{i}"] for i in range(2)]
    canvases, infos = zip(*[prep.image(tf.constant(im)) for im in images])
    batch = prep.batch(tf.stack(canvases), tf.stack(infos)).numpy()
    figures = {"preprocess_abs": float(np.abs(batch - _nhwc(ref["batch"])).max())}
    assert batch.shape == _nhwc(ref["batch"]).shape  # padded to 32 as torchvision pads
    assert figures["preprocess_abs"] < 1e-4

    x = tf.constant(_nhwc(ref["batch"]))  # torchvision's own input from here on
    feats = model.decoder(model.backbone(x))
    scores, deltas = model.rpn_head(feats)
    for level in range(2, 7):
        figures[f"feat{level}"] = _rel(feats[str(level)].numpy(), _nhwc(ref[f"feat_{level}"]))
        figures[f"objectness{level}"] = _rel(scores[str(level)].numpy(),
                                             _nhwc(ref[f"objectness_{level}"]))
        figures[f"rpn_deltas{level}"] = _rel(deltas[str(level)].numpy(),
                                             _yx(_nhwc(ref[f"deltas_{level}"])))
    sizes = tf.constant(ref["image_sizes"], tf.float32)
    rois, _ = model.roi_generator(deltas, scores, None, sizes, training=False)
    worst = 0.0
    for i in range(2):
        theirs = _yx(ref[f"proposals_{i}"])
        ours = rois[i].numpy()
        ours = ours[(ours[:, 2] - ours[:, 0]) > 0]  # padding slots are all-zero boxes
        assert len(ours) == len(theirs)
        worst = max(worst, np.abs(ours[:, None] - theirs[None]).max(-1).min(0).max())
    figures["proposals_px"] = float(worst)
    assert worst < 0.01

    # Box head and mask head on torchvision's own proposals / detections.
    n = [len(ref[f"proposals_{i}"]) for i in range(2)]
    props = np.zeros((2, max(n), 4), np.float32)
    for i in range(2):
        props[i, :n[i]] = _yx(ref[f"proposals_{i}"])
    logits, box_deltas = model.detection_head[0](model.roi_aligner(feats, tf.constant(props)))
    logits = np.concatenate([logits[i, :n[i]].numpy() for i in range(2)])
    box_deltas = np.concatenate([box_deltas[i, :n[i]].numpy() for i in range(2)])
    figures["class_logits"] = _rel(logits, ref["class_logits"])
    figures["box_deltas"] = _rel(box_deltas, _yx(ref["box_regression"]))
    mask_worst = 0.0
    for i in range(2):
        boxes = np.zeros((2, len(ref[f"batch_boxes_{i}"]), 4), np.float32)
        boxes[i] = _yx(ref[f"batch_boxes_{i}"])
        classes = np.zeros(boxes.shape[:2], np.int32)
        classes[i] = ref[f"batch_labels_{i}"]
        probs = tf.sigmoid(model.mask_head([model.mask_roi_aligner(feats, tf.constant(boxes)),
                                            tf.constant(classes)]))[i].numpy()
        mask_worst = max(mask_worst, float(np.abs(probs - ref[f"mask_probs_{i}"]).max()))
    figures["mask_probs_abs"] = mask_worst
    print(f"\n{version} stages: " + ", ".join(f"{k} {v:.2g}" for k, v in figures.items()))
    assert max(v for k, v in figures.items() if k.startswith(
        ("feat", "objectness", "rpn_deltas", "class_logits", "box_deltas"))) < TOL_REL
    assert mask_worst < 1e-4


def _mask_iou(a, b) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def test_end_to_end_detections(case):
    """One image per call, as the export's image_tensor signature runs them."""
    from tfmask.export.serving import detect

    version, ref, model, prep = case
    worst = {"box_px": 0.0, "score": 0.0, "mask_iou": 1.0}
    total = 0
    for i in range(2):
        image = ref[f"images_{i}"]
        h, w = image.shape[:2]
        out = detect(model, prep, tf.constant(image[None]), full_image_masks=True)
        n = int(out["num_detections"][0])
        boxes = out["detection_boxes"][0, :n].numpy() * [h, w, h, w]
        scores = out["detection_scores"][0, :n].numpy()
        classes = np.rint(out["detection_classes"][0, :n].numpy()).astype(int)
        masks = out["detection_masks_reframed"][0, :n, :h, :w].numpy() > 0
        their_boxes = _yx(ref[f"boxes_{i}"])
        assert n == len(their_boxes) > 0
        for k in range(n):  # torchvision's detection k against ours of its class
            same = np.nonzero(classes == ref[f"labels_{i}"][k])[0]
            assert len(same), f"image {i}: no detection of class {ref[f'labels_{i}'][k]}"
            diff = np.abs(boxes[same] - their_boxes[k]).max(1)
            j = same[diff.argmin()]
            worst["box_px"] = max(worst["box_px"], float(diff.min()))
            worst["score"] = max(worst["score"], float(abs(scores[j] - ref[f"scores_{i}"][k])))
            worst["mask_iou"] = min(worst["mask_iou"],
                                    _mask_iou(masks[j], ref[f"masks_{i}"][k] > 0.5))
        total += n
    print(f"\n{version} end to end ({total} detections): max box diff "
          f"{worst['box_px']:.2g} px, max score diff {worst['score']:.2g}, "
          f"min mask IoU {worst['mask_iou']:.4f}")
    assert worst["box_px"] <= TOL_BOX_PX
    assert worst["score"] <= TOL_SCORE
    assert worst["mask_iou"] >= MIN_MASK_IOU
