"""torchvision's Mask R-CNN with seeded random weights: its state dict and its outputs.

Run in its own process (the tests never import torch beside TensorFlow)::

    python tests/modeling/torchvision/torch_reference.py --version v1 --out DIR

writes ``DIR/weights.pth`` (``torch.save`` of the state dict; ``--legacy`` also
``DIR/weights_legacy.pth`` in the pre-1.6 format), and ``DIR/reference.npz``:
``images_<i>`` (the uint8 inputs), ``batch`` (the transformed, padded NCHW
batch), ``image_sizes``, FPN ``feat_<level>``, RPN head ``objectness_<level>`` /
``deltas_<level>``, ``proposals_<i>``, the box head on those proposals
(``class_logits``, ``box_regression``), the batch's detections
``batch_boxes_<i>`` (resized-image pixels) / ``batch_labels_<i>`` with their 28x28
``mask_probs_<i>``, and end to end with one image per call: ``boxes_<i>`` (xyxy,
input pixels), ``labels_<i>``, ``scores_<i>``, ``masks_<i>`` (pasted probabilities).

Weights are torchvision's initialization, BatchNorm statistics of these
images (random in v2's heads); the RPN, box and mask predictors are then scaled
on these images so that
their outputs spread (objectness logits ~2, class logits ~2, centred, the background raised: detections
above 0.05 in each image, few near-ties). v1 sets every BatchNorm's eps to
0, as torchvision does for its COCO v1 weights (``overwrite_eps``).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
import torchvision
from torchvision.models.detection import maskrcnn_resnet50_fpn, maskrcnn_resnet50_fpn_v2

SIZES_HW = ((150, 200), (176, 132))  # two shapes: batch padding and both orientations


def make_images(seed: int):
    rng = np.random.default_rng(seed)
    images = []
    for h, w in SIZES_HW:
        yy, xx = np.mgrid[:h, :w]
        img = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 3) % 256], -1)
        for _ in range(4):  # rectangles and discs, so features vary
            y0, x0 = rng.integers(0, h - 20), rng.integers(0, w - 20)
            y1, x1 = y0 + rng.integers(10, h - y0), x0 + rng.integers(10, w - x0)
            img[y0:y1, x0:x1] = rng.integers(0, 256, 3)
        img = img + rng.integers(-20, 21, img.shape)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


def _scale_to(layer, outputs, std: float, g, bias_std: float = 0.0) -> None:
    """Rescales ``layer`` (a conv or linear) so its ``outputs`` would have ``std``."""
    factor = std / float(outputs.std())
    layer.weight.mul_(factor)
    layer.bias.copy_(bias_std * torch.randn(layer.bias.shape, generator=g))


def randomize(model, batch, seed: int, version: str) -> None:
    """Random BatchNorm affine parameters and statistics, head outputs scaled to a spread.

    The backbone's and FPN's statistics are those of these images (as a trained
    network's would be: activations stay of order 1, so a model fine-tuned from
    this checkpoint trains), floored at 0.01; the heads' (v2) are random.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=g))
                module.bias.copy_(0.1 * torch.randn(n, generator=g))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                module.running_var.copy_(0.5 + torch.rand(n, generator=g))
                module.momentum = None  # a cumulative average when calibrating
        model.backbone.train()
        for module in model.backbone.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
        model.backbone(batch.tensors)
        model.eval()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.clamp_(min=0.01)
                if version == "v1":
                    module.eps = 0.0
        feats = model.backbone(batch.tensors)
        head = model.rpn.head
        objectness, deltas = head(list(feats.values()))
        _scale_to(head.cls_logits, torch.cat([o.flatten() for o in objectness]), 2.0, g, 0.5)
        _scale_to(head.bbox_pred, torch.cat([d.flatten() for d in deltas]), 0.1, g)
        proposals, _ = model.rpn(batch, feats)
        roi_feats = model.roi_heads.box_roi_pool(feats, proposals, batch.image_sizes)
        x = model.roi_heads.box_head(roi_feats)
        predictor = model.roi_heads.box_predictor
        cls = predictor.cls_score
        cls.weight.normal_(generator=g)
        _scale_to(cls, cls(x), 2.0, g, 0.3)
        # Centre each class over these ROIs (else one class wins everywhere), then raise
        # the background until about 150 (ROI, class) pairs score above 0.05.
        logits = cls(x)
        cls.bias.sub_(logits.mean(0) - cls.bias)
        logits = cls(x)
        lo, hi = 0.0, 20.0
        for _ in range(30):
            mid = (lo + hi) / 2
            shifted = logits.clone()
            shifted[:, 0] += mid
            count = int((torch.softmax(shifted, -1)[:, 1:] > 0.05).sum())
            lo, hi = (mid, hi) if count > 150 else (lo, mid)
        cls.bias[0] += lo
        predictor.bbox_pred.weight.normal_(generator=g)
        _scale_to(predictor.bbox_pred, predictor.bbox_pred(x), 0.5, g)
        few = [p[:32] for p in proposals]  # the mask head is costly: calibrate on a few
        masks = model.roi_heads.mask_head(
            model.roi_heads.mask_roi_pool(feats, few, batch.image_sizes))
        masks = model.roi_heads.mask_predictor(masks)
        _scale_to(model.roi_heads.mask_predictor.mask_fcn_logits, masks, 3.0, g, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", choices=("v1", "v2"), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-size", type=int, default=160)
    ap.add_argument("--max-size", type=int, default=256)
    ap.add_argument("--proposals", type=int, default=1000,
                    help="rpn_pre/post_nms_top_n_test (torchvision: 1000)")
    ap.add_argument("--legacy", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    build = maskrcnn_resnet50_fpn if args.version == "v1" else maskrcnn_resnet50_fpn_v2
    model = build(weights=None, weights_backbone=None, num_classes=91,
                  min_size=args.min_size, max_size=args.max_size,
                  rpn_pre_nms_top_n_test=args.proposals,
                  rpn_post_nms_top_n_test=args.proposals).eval()
    images = make_images(args.seed)
    tensors = [torch.from_numpy(im).permute(2, 0, 1).float() / 255.0 for im in images]
    out = {f"images_{i}": im for i, im in enumerate(images)}
    with torch.no_grad():
        batch, _ = model.transform(tensors)
    randomize(model, batch, args.seed + 1, args.version)
    os.makedirs(args.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.out, "weights.pth"))
    if args.legacy:
        torch.save(model.state_dict(), os.path.join(args.out, "weights_legacy.pth"),
                   _use_new_zipfile_serialization=False)
    with torch.no_grad():
        feats = model.backbone(batch.tensors)
        objectness, deltas = model.rpn.head(list(feats.values()))
        proposals, _ = model.rpn(batch, feats)
        roi_feats = model.roi_heads.box_roi_pool(feats, proposals, batch.image_sizes)
        class_logits, box_regression = model.roi_heads.box_predictor(
            model.roi_heads.box_head(roi_feats))
        dets, _ = model.roi_heads(feats, proposals, batch.image_sizes)
        mask_probs = [d["masks"][:, 0].numpy().copy() for d in dets]
        # End to end, one image per batch (as tfmask's image_tensor signature runs them).
        single = [model([t])[0] for t in tensors]
    out["batch"] = batch.tensors.numpy()
    out["image_sizes"] = np.array(batch.image_sizes)
    for level, (name, f) in zip(range(2, 7), feats.items()):
        out[f"feat_{level}"] = f.numpy()
    for level, (o, d) in zip(range(2, 7), zip(objectness, deltas)):
        out[f"objectness_{level}"], out[f"deltas_{level}"] = o.numpy(), d.numpy()
    out["class_logits"], out["box_regression"] = class_logits.numpy(), box_regression.numpy()
    for i, (p, d) in enumerate(zip(proposals, dets)):
        out[f"proposals_{i}"] = p.numpy()
        out[f"batch_boxes_{i}"] = d["boxes"].numpy()  # model frame (resized image)
        out[f"batch_labels_{i}"] = d["labels"].numpy()
        out[f"mask_probs_{i}"] = mask_probs[i]
    for i, d in enumerate(single):
        out[f"boxes_{i}"] = d["boxes"].numpy()
        out[f"labels_{i}"] = d["labels"].numpy()
        out[f"scores_{i}"] = d["scores"].numpy()
        out[f"masks_{i}"] = d["masks"][:, 0].numpy()
    out["torchvision_version"] = np.array(torchvision.__version__)
    np.savez_compressed(os.path.join(args.out, "reference.npz"), **out)


if __name__ == "__main__":
    main()
