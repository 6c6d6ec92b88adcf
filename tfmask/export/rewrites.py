"""What an export does to the restored model before saving its serving graph, in order.

Each rewrite computes what the model computes, in a form that runs faster on CPU;
export writes the model's checkpoint before them, so the checkpoint keeps the
trained layers as they were:

1. batch norms folded into the convolutions before them
   (:mod:`tfmask.export.fold_norms`), so they become biases;
2. the mask head's f x f transposed convolution as a fused 1x1 convolution and
   ``depth_to_space`` (:mod:`tfmask.export.mask_upsampling`; needs 1);
3. a bfloat16 model's weights stored in bfloat16
   (:func:`tfmask.export.precision.store_in_compute_dtype`; after 1, which rescales
   kernels in float32, and 2, whose weights are made in the compute dtype).

The peers bench (:mod:`tfmask.bench.peers`) times the same graph::

    from tfmask.export.rewrites import rewrite_for_serving
    done = rewrite_for_serving(model, prep)   # done.folded.folded, done.upsampling, done.stored
"""

from __future__ import annotations

from dataclasses import dataclass

from tfmask.export.fold_norms import FoldReport


@dataclass
class ServingRewrites:
    """What :func:`rewrite_for_serving` did.

    Attributes:
      folded: the batch-norm fold's report.
      upsampling: '' when the mask head's upsampling was rewritten, else why not.
      stored: weights stored in their layers' compute dtype (0 in float32).
    """

    folded: FoldReport
    upsampling: str
    stored: int


def rewrite_for_serving(model, prep) -> ServingRewrites:
    """Applies the rewrites (module docstring) to ``model`` in place; ``prep``: the
    export's :class:`~tfmask.export.serving.Preprocessing`."""
    from tfmask.export.fold_norms import fold_batch_norms
    from tfmask.export.mask_upsampling import rewrite_mask_upsampling
    from tfmask.export.precision import store_in_compute_dtype

    folded = fold_batch_norms(model, prep)
    upsampling = rewrite_mask_upsampling(model, folded)
    return ServingRewrites(folded, upsampling, store_in_compute_dtype(model))
