"""Stage 6, evaluation: COCO box and mask AP of detections against ground truth.

``inputs`` reads and checks ground truth (records or COCO JSON) and
detections, ``coco_eval`` runs pycocotools, ``outputs`` writes metrics.json,
the table and the precision-recall plots.
"""
