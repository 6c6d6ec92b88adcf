"""Drawing instances on an image: masks, boxes and labels.

Used by ``tfmask preview`` for ground truth and meant for inference overlays
too. Each instance gets a colour chosen by its index (the same index always
gets the same colour), its mask is blended in semi-transparently, its box is
outlined and its label (plus score, if given) is written on a filled tag.

Example::

    from tfmask.draw import overlay
    picture = overlay(image_rgb, masks, boxes_xyxy_px, ["speaker", "cup"], scores=[0.9, 0.7])
    PIL.Image.fromarray(picture).save("out.png")
"""

from __future__ import annotations

import colorsys
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RGB = Tuple[int, int, int]

# Successive hues a golden-ratio turn apart never repeat and stay far apart
# for the first dozen or so instances, whatever their number.
_GOLDEN = 0.6180339887498949
_TEXT_PAD_PX = 2


def instance_colour(index: int) -> RGB:
    """The colour of instance ``index`` (a bright, saturated RGB triple)."""
    hue = (0.05 + index * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def _check(image_rgb, masks, boxes_xyxy_px, labels, scores):
    image = np.asarray(image_rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be [H, W, 3] uint8, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    masks = np.asarray(masks, dtype=bool)
    n = len(labels)
    if masks.shape != (n, h, w):
        raise ValueError(f"masks must be [N={n}, H={h}, W={w}] (one per label), "
                         f"got {masks.shape}")
    boxes = np.asarray(boxes_xyxy_px, dtype=np.float64).reshape(-1, 4)
    if len(boxes) != n:
        raise ValueError(f"boxes must be [N={n}, 4], got {len(boxes)} boxes")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != n:
            raise ValueError(f"scores must have N={n} entries, got {len(scores)}")
    return image, masks, boxes, scores


def overlay(image_rgb: np.ndarray, masks: np.ndarray, boxes_xyxy_px: np.ndarray,
            labels: Sequence[str], scores: Optional[Sequence[float]] = None,
            alpha: float = 0.5) -> np.ndarray:
    """Draws N instances on an image.

    Args:
      image_rgb: [H, W, 3] uint8; not modified.
      masks: [N, H, W] bool instance masks.
      boxes_xyxy_px: [N, 4] ``[xmin, ymin, xmax, ymax]`` in pixel edges (a box
        covering columns 2..4 has xmin=2, xmax=5), as in the records.
      labels: N texts, e.g. class names.
      scores: optional N scores, written after the label with two decimals.
      alpha: mask opacity; a masked pixel becomes
        ``(1 - alpha) * pixel + alpha * colour``.

    Returns:
      A new [H, W, 3] uint8 image. Pixels outside every mask, box outline and
      label tag are unchanged.
    """
    image, masks, boxes, scores = _check(image_rgb, masks, boxes_xyxy_px, labels, scores)
    h, w = image.shape[:2]
    colours = [instance_colour(i) for i in range(len(labels))]
    blended = image.astype(np.float32)
    for mask, colour in zip(masks, colours):
        blended[mask] = (1.0 - alpha) * blended[mask] + alpha * np.float32(colour)
    picture = Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(picture)
    line_px = max(1, round(min(h, w) / 250))
    rects = []
    for box, colour in zip(boxes, colours):
        # Pixel edges -> the inclusive pixel rectangle PIL draws.
        x0, y0 = (int(np.clip(round(v), 0, m - 1)) for v, m in zip(box[:2], (w, h)))
        x1, y1 = (int(np.clip(round(v) - 1, 0, m - 1)) for v, m in zip(box[2:], (w, h)))
        x1, y1 = max(x0, x1), max(y0, y1)
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=line_px)
        rects.append((x0, y0))
    # Labels after every box, so no outline covers a tag.
    font = ImageFont.load_default(size=max(10, round(min(h, w) / 40)))
    for i, ((x0, y0), colour) in enumerate(zip(rects, colours)):
        text = labels[i] if scores is None else f"{labels[i]} {scores[i]:.2f}"
        _tag(draw, text, x0, y0, colour, font, (h, w))
    return np.array(picture)


def _tag(draw: ImageDraw.ImageDraw, text: str, x0: int, y0: int, colour: RGB, font,
         size_hw: Tuple[int, int]) -> None:
    """A filled tag with ``text``, above the box corner (x0, y0) if it fits, else inside."""
    if not text:
        return
    w = size_hw[1]
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tag_w = right - left + 2 * _TEXT_PAD_PX
    tag_h = bottom - top + 2 * _TEXT_PAD_PX
    ty = y0 - tag_h if y0 - tag_h >= 0 else y0
    tx = min(x0, max(0, w - tag_w))
    draw.rectangle((tx, ty, tx + tag_w - 1, ty + tag_h - 1), fill=colour)
    # Dark text on light tags, light on dark (ITU-R 601 luma).
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    draw.text((tx + _TEXT_PAD_PX - left, ty + _TEXT_PAD_PX - top), text,
              fill=(0, 0, 0) if luma > 140 else (255, 255, 255), font=font)
