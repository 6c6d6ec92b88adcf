"""One self-contained HTML page: sections, tables, SVG bar charts, embedded images.

Images are ``data:`` URIs (JPEG thumbnails, PNG plots), charts inline SVG,
styles inline: the file opens anywhere, offline, and has no script.

Example::

    page = Page("Dataset report")
    page.section("Class counts", page.table(["class", "instances"], [["cup", 3]]))
    page.write("report.html")
"""

from __future__ import annotations

import base64
import html
import io
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image

from tfmask.atomic import atomic_write
from tfmask.errors import PathLike

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1280px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.gallery{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;padding:4px;
font-size:12px}.card img{display:block;max-width:360px}.pair{display:flex;gap:4px}
.bad{color:#b00}.note{color:#666;font-size:13px}ul.problems{font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:24px}
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def image_uri(rgb: np.ndarray, max_side: int = 360, fmt: str = "JPEG") -> str:
    """A ``data:`` URI of an [H, W, 3] uint8 image, shrunk to ``max_side`` pixels."""
    img = Image.fromarray(rgb)
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))),
                         Image.BILINEAR)
    out = io.BytesIO()
    img.save(out, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    mime = "jpeg" if fmt == "JPEG" else "png"
    return f"data:image/{mime};base64," + base64.b64encode(out.getvalue()).decode("ascii")


def file_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], width: int = 420,
              height: int = 200, colour: str = "#4a7ebb") -> str:
    """Inline SVG bar chart with one bar per label, its value written above it."""
    n = max(len(values), 1)
    top = max(max(values, default=0), 1)
    pad_l, pad_b, pad_t = 8, 36, 22
    bw = (width - pad_l * 2) / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{esc(title)}">',
             f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="13">{esc(title)}'
             '</text>']
    plot_h = height - pad_b - pad_t
    for i, (label, value) in enumerate(zip(labels, values)):
        h = plot_h * value / top
        x = pad_l + i * bw
        y = pad_t + plot_h - h
        parts.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(bw - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="{colour}"><title>{esc(label)}: {value:g}'
                     '</title></rect>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{y - 2:.1f}" text-anchor="middle" '
                     f'font-size="10">{value:g}</text>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{height - pad_b + 12:.1f}" '
                     f'text-anchor="middle" font-size="9">{esc(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(title: str, values: Sequence[float], edges: Sequence[float], fmt="{:g}") -> str:
    """SVG histogram of ``values`` over bins ``[edges[i], edges[i+1])`` (last one closed)."""
    counts, _ = np.histogram(np.asarray(values, np.float64), bins=np.asarray(edges, np.float64))
    labels = [f"{fmt.format(a)}-{fmt.format(b)}" for a, b in zip(edges[:-1], edges[1:])]
    return bar_chart(title, labels, counts.tolist())


class Page:
    """An HTML page built section by section."""

    def __init__(self, title: str):
        self.title = title
        self.parts: List[str] = []

    def section(self, heading: str, body: str, note: Optional[str] = None) -> None:
        self.parts.append(f"<h2>{esc(heading)}</h2>"
                          + (f'<p class="note">{esc(note)}</p>' if note else "") + body)

    @staticmethod
    def table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                       for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    @staticmethod
    def figure(uri: str, caption: str, alt: str = "") -> str:
        return (f'<div class="card"><img src="{uri}" alt="{esc(alt or caption)}">'
                f"<div>{esc(caption)}</div></div>")

    def html(self) -> str:
        return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{esc(self.title)}</title><style>{_STYLE}</style></head><body>"
                f"<h1>{esc(self.title)}</h1>{''.join(self.parts)}</body></html>\n")

    def write(self, path: PathLike) -> None:
        atomic_write(path, self.html())
