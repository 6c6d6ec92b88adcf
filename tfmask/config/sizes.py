"""The sizes Model Garden's static shapes need, derived after the sections have run.

Model Garden's samplers take a fixed number of items with ``tf.nn.top_k``,
which fails at the first training step when fewer exist. The OD API samples
at most what exists, so the translation lowers a requested size to what
there is and says so in a note:

* ROI sampler (``modeling/layers/roi_sampler.py`` + ``box_sampler.py``):
  ``num_sampled_rois`` is drawn from the proposals plus the
  ``max_num_instances`` ground-truth slots it mixes in, and the proposals
  are at most ``num_proposals`` and at most the anchors there are
  (``roi_generator.py`` keeps ``min(anchors, num_proposals)`` per level,
  then ``num_proposals`` in all).
* Mask sampler (``modeling/layers/mask_sampler.py``): ``num_sampled_masks``
  is drawn from the sampled ROIs. The OD API computes the mask loss on
  every positive ROI of the second-stage batch, and at most
  ``foreground_fraction`` of it is positive (``sampling_ops.py`` samples
  ``int(num_sampled_rois * foreground_fraction)`` positives), so that many
  masks are sampled: 16 of 64, 128 of 512.

The other sizes cannot fail: the RPN's anchor sampler and the detection
generator take ``min(requested, available)`` themselves, levels and image
size are checked in the backbone section (a multiple of ``2**max_level``,
backbone levels 2-5) and crop sizes are at least 1.
"""

from __future__ import annotations

from typing import List, Sequence

from tfmask.config.fields import Ledger

M = "task.model"


def anchors_per_level(size_hw: Sequence[int], min_level: int, max_level: int,
                      per_location: int) -> List[int]:
    """Anchors on each FPN level of a ``size_hw`` input (divisible by 2**max_level)."""
    return [(size_hw[0] >> level) * (size_hw[1] >> level) * per_location
            for level in range(min_level, max_level + 1)]


def fit_sizes(ex: Ledger) -> None:
    """Lowers ``num_sampled_rois`` to what exists; derives ``num_sampled_masks``."""
    anchor = ex.get(f"{M}.anchor", {})
    per_location = anchor.get("num_scales", 1) * len(anchor.get("aspect_ratios", [0.5, 1, 2]))
    levels = anchors_per_level(ex.get(f"{M}.input_size"), ex.get(f"{M}.min_level"),
                               ex.get(f"{M}.max_level"), per_location)
    proposals = ex.get(f"{M}.roi_generator.num_proposals")
    made = min(proposals, sum(min(n, proposals) for n in levels))
    slots = ex.get("task.train_data.parser.max_num_instances")
    rois = ex.get(f"{M}.roi_sampler.num_sampled_rois")
    if rois > made + slots:
        ex.note(f"second_stage_batch_size {rois} -> {made + slots}: Model Garden samples the "
                f"second-stage batch from the {made} proposals plus {slots} ground-truth "
                "slots (max_number_of_boxes) and cannot take more; the OD API samples at "
                "most what exists")
        rois = made + slots
        ex.set(f"{M}.roi_sampler.num_sampled_rois", rois)
    fraction = ex.get(f"{M}.roi_sampler.foreground_fraction")
    ex.set(f"{M}.mask_sampler.num_sampled_masks", max(1, min(rois, int(rois * fraction))))
