"""``tfmask report``: one self-contained HTML page about a dataset or an evaluation.

Images are embedded (``data:`` URIs) and nothing is fetched, so the page can
be mailed or opened offline. Examples::

    tfmask report --records 'dataset/records/*-of-*' --out dataset_report.html
    tfmask report --data-dir dataset --instance-mode box --out dataset_report.html
    tfmask report --labelme-dir shots --out shots.html      # also --yolo-data, --cvat-xml, ...
    tfmask report --eval runs/tiny/eval --out eval_report.html
"""

from __future__ import annotations

import argparse

from tfmask.data.instances import INSTANCE_MODES


def register(sub) -> None:
    p = sub.add_parser("report", help="HTML report of a dataset or an evaluation",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--records", metavar="GLOB", help="record files (quote the glob)")
    what.add_argument("--eval", dest="eval_dir", metavar="DIR",
                      help="a tfmask eval --output folder")
    what.add_argument("--data-dir", help="tutorial layout folder (converted to a temporary "
                      "folder first; invalid images are listed, not fatal)")
    what.add_argument("--coco-json", metavar="JSON", help="COCO JSON (images: --images-dir)")
    what.add_argument("--labelme-dir", metavar="DIR")
    what.add_argument("--yolo-data", metavar="DATA_YAML")
    what.add_argument("--cvat-xml", metavar="FILE")
    what.add_argument("--instance-masks-dir", metavar="DIR")
    p.add_argument("--out", required=True, metavar="FILE.html", help="the page to write")
    p.add_argument("--images-dir", default="train_images", help="tutorial/COCO images folder")
    p.add_argument("--label-map", dest="label_map_path", help="label map (as for tfrecord)")
    p.add_argument("--instance-mode", choices=INSTANCE_MODES, default="components",
                   help="tutorial layout: how masks become instances (default %(default)s)")
    p.add_argument("--gt", metavar="RECORDS", help="--eval: ground-truth records (default: "
                   "the ones tfmask eval used)")
    p.add_argument("--gallery", type=int, default=24, help="previews / worst images shown")
    p.add_argument("--min-score", type=float, default=0.5,
                   help="--eval: detections below this score are not drawn (default %(default)s)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.eval_dir:
        from tfmask.reporting.evaluation import eval_page

        path = eval_page(args.eval_dir, args.out, args.gt, args.label_map_path, args.gallery,
                         args.min_score)
    elif args.records:
        from tfmask.reporting.dataset import dataset_page

        path = dataset_page(args.records, args.out, args.gallery)
    else:
        from tfmask.data.convert import ConvertConfig
        from tfmask.reporting.dataset import source_page

        cfg = ConvertConfig(data_dir=args.data_dir, images_dir=args.images_dir,
                            label_map_path=args.label_map_path, coco_json=args.coco_json,
                            labelme_dir=args.labelme_dir, yolo_data=args.yolo_data,
                            cvat_xml=args.cvat_xml, instance_masks_dir=args.instance_masks_dir,
                            instance_mode=args.instance_mode, output_dir="unused")
        path = source_page(cfg, args.out, args.gallery)
    print(f"wrote {path}")
    return 0
