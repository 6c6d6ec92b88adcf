"""torchvision's COCO-trained Mask R-CNN R50-FPN (v1 and v2) in tfmask, without torch.

* :mod:`.pth` — reads ``.pth`` files with a restricted unpickler (no code runs);
* :mod:`.layers`, :mod:`.backbone`, :mod:`.heads`, :mod:`.ops`, :mod:`.detector` —
  the architecture, computing what torchvision computes (padding, frozen
  BatchNorm, anchors, box coding, ROI align, post-processing), assembled as a
  Model Garden ``MaskRCNNModel`` so tfmask trains, exports and evaluates it;
* :mod:`.inputs` — torchvision's resize for training and export;
* :mod:`.configs`, :mod:`.convert` — the pipeline.config / label map texts and
  the ``.pth`` -> checkpoint folder conversion;
* :mod:`.download` — ``tfmask pretrained torchvision_maskrcnn_resnet50_fpn[_v2]_coco``.

Selected in a pipeline.config by ``feature_extractor.type:
'faster_rcnn_resnet50_fpn_torchvision'`` (v1) or ``..._torchvision_v2``.
"""
