"""``tfmask infer``: run an exported model on images.

    tfmask infer --export-dir exported/tiny --images dataset/test_images --output out/infer

Writes OUT/overlays/<stem>.png (masks, boxes, class names, scores),
OUT/detections.json (COCO results: image_id 1..N in sorted order, file_name,
category_id, bbox [x, y, w, h] px, score, RLE segmentation) and with
--instance-masks OUT/masks/<stem>_<k>_<class>.png (0/255 per instance).
"""

from __future__ import annotations

import argparse

from tfmask.cli.flags import od_api_flag


def register(sub) -> None:
    p = sub.add_parser("infer", help="run an exported model on images",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export-dir", "--model", dest="export_dir", required=True,
                   metavar="EXPORT_DIR", help="a `tfmask export` output folder")
    p.add_argument("--images", required=True, metavar="DIR_OR_GLOB",
                   help="folder of JPEG/PNG images, a glob (quote it) or one file")
    p.add_argument("--output", dest="output_dir", required=True, metavar="OUT",
                   help="output folder")
    od_api_flag(p, "min_score", type=float, default=0.5,
                help="drop detections below this score (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=1, help="images per model call")
    p.add_argument("--instance-masks", action="store_true",
                   help="also write one 0/255 PNG per instance into OUT/masks")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.inference.infer import infer

    s = infer(args.export_dir, args.images, args.output_dir, min_score=args.min_score,
              batch_size=args.batch_size, instance_masks=args.instance_masks,
              progress=not args.no_progress)
    if s.ignored:
        print(f"ignored {len(s.ignored)} file(s) that are not JPEG/PNG: "
              f"{', '.join(s.ignored[:5])}{' ...' if len(s.ignored) > 5 else ''}")
    print(f"{s.images} image(s), {s.detections} detection(s) with score >= {args.min_score} "
          f"in {s.seconds:.1f} s ({s.images_per_s:.1f} images/s after "
          f"{s.load_seconds:.1f} s loading the model)")
    print(f"  overlays:   {s.overlays_dir}/")
    print(f"  detections: {s.detections_json}")
    if s.masks_dir:
        print(f"  masks:      {s.masks_dir}/")
    return 0
