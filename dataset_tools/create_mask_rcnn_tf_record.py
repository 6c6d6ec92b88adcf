#!/usr/bin/env python3
"""Drop-in replacement for the tutorial's create_mask_rcnn_tf_record.py.

    python dataset_tools/create_mask_rcnn_tf_record.py \
        --data_dir_path=dataset --bboxes_provided=True

Same flags and defaults; runs on tfmask's converter (see `tfmask tfrecord`
for instance splitting, train/val split, COCO input and more).
"""

from tfmask.cli.legacy_tfrecord import main

if __name__ == "__main__":
    raise SystemExit(main())
