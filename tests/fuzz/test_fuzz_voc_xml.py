"""Property-based fuzzing of the labelImg / Pascal-VOC XML reader.

Arbitrary bytes and generated labelImg-like documents: only DataError (naming
the file) may escape, and whatever parses has named objects with finite
coordinates and a positive whole-pixel size. Run with
``python -m pytest tests/fuzz/test_fuzz_voc_xml.py``.
"""

import math
import os
import tempfile

from hypothesis import HealthCheck, example, given, settings, strategies as st

from tfmask.errors import DataError
from tfmask.data.sources.voc_xml import read_voc_xml

_DIR = tempfile.mkdtemp(prefix="tfmask-fuzz-xml-")
_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _read(data: bytes):
    """read_voc_xml on a file holding ``data``; None when it raised DataError."""
    path = os.path.join(_DIR, "a.xml")
    with open(path, "wb") as f:
        f.write(data)
    try:
        ann = read_voc_xml(path)
    except DataError as exc:
        assert exc.path == path and exc.reason
        return None
    assert ann.path == path
    if ann.size_hw is not None:
        assert all(isinstance(v, int) and v >= 1 for v in ann.size_hw)
    for obj in ann.objects:
        assert isinstance(obj.name, str) and obj.name and obj.name == obj.name.strip()
        assert len(obj.box_xyxy_px) == 4 and all(math.isfinite(v) for v in obj.box_xyxy_px)
        assert isinstance(obj.line, int)
    return ann


def _obj(name, coords):
    return (f"<object><name>{name}</name><bndbox><xmin>{coords[0]}</xmin><ymin>{coords[1]}"
            f"</ymin><xmax>{coords[2]}</xmax><ymax>{coords[3]}</ymax></bndbox></object>")


@settings(max_examples=600, **_SETTINGS)
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda s: s.encode("utf-8",
                                                                               "surrogatepass")))
@example(("<annotation>" + _obj("a", ("nan", 1, 2, 2)) + "</annotation>").encode())
@example(("<annotation>" + _obj("a", ("1e999", 1, 2, 2)) + "</annotation>").encode())
@example(b"<annotation><size><width>inf</width><height>1</height></size></annotation>")
@example(b"<annotation><size><width>0.5</width><height>9</height></size></annotation>")
@example(b'<?xml version="1.0" encoding="foo"?><annotation/>')
@example("<annotation/>".encode("utf-16"))
@example(b"<annotation>" + b"<a>" * 3000 + b"</a>" * 3000 + b"</annotation>")
def test_arbitrary_bytes(data):
    _read(data)


_NUMBER = st.one_of(
    st.integers(-10, 100).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-2 ** 80, 2 ** 80).map(str),
    st.sampled_from(["", " ", "nan", "NaN", "-inf", "Infinity", "1e999", "-1e999", "1_0",
                     "0x10", "12px", " 7 ", "\n3\n", "&#49;", "<![CDATA[5]]>", "4<!--c-->2",
                     "<b>3</b>", "١٢", "1.5e2", "+.5", "-0"]))
_NAME = st.one_of(st.sampled_from(["cup", " speaker ", "", "  ", "&amp;", "<![CDATA[cup]]>",
                                   "<!-- c -->cup", "<i>cup</i>", "c&lt;p", "ö", "&#0;",
                                   "&#x1F600;", "&undefined;"]),
                  st.text(st.characters(codec="ascii", exclude_characters="<&"), max_size=5))
_JUNK = st.sampled_from(["", "<pose>Unspecified</pose>", "<truncated>0</truncated>",
                         "<difficult>1</difficult>", "<!-- comment -->", "<?pi data?>",
                         "<part><name>hand</name></part>", "<x><y><z/></y></x>",
                         "<object/>", "<bndbox/>", "junk text", "<![CDATA[<object>]]>"])


@st.composite
def _object(draw):
    parts = []
    if draw(st.integers(0, 9)):
        parts.append(f"<name>{draw(_NAME)}</name>")
    if draw(st.integers(0, 9)):
        tags = ["xmin", "ymin", "xmax", "ymax"]
        box = "".join(f"<{t}>{draw(_NUMBER)}</{t}>" for t in tags if draw(st.integers(0, 15)))
        parts.append(f"<bndbox>{box}{draw(_JUNK)}</bndbox>")
    parts.append(draw(_JUNK))
    parts = draw(st.permutations(parts))
    return "<object>" + "".join(parts) + "</object>"


@st.composite
def _document(draw):
    body = [draw(st.sampled_from(["", "<folder>train_images</folder>",
                                  "<filename>a.jpg</filename>"]))]
    size = draw(st.integers(0, 4))
    if size:
        dims = [f"<width>{draw(_NUMBER)}</width>", f"<height>{draw(_NUMBER)}</height>",
                "<depth>3</depth>"]
        if size == 1:
            dims = dims[draw(st.integers(0, 2)):]
        body.append("<size>" + "".join(draw(st.permutations(dims))) + "</size>")
    body += draw(st.lists(_object() | _JUNK, max_size=5))
    root = draw(st.sampled_from(["annotation"] * 6 + ["Annotation", "root",
                                                      'annotation xmlns="urn:x"']))
    doc = f"<{root}>" + "\n".join(body) + f"</{root.split()[0]}>"
    prolog = draw(st.sampled_from([
        "", '<?xml version="1.0"?>\n', '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="ISO-8859-1"?>', '<?xml version="1.0" encoding="utf-16"?>',
        "<!DOCTYPE annotation>", '<!DOCTYPE annotation SYSTEM "http://example.invalid/a.dtd">',
        '<!DOCTYPE annotation [<!ENTITY e "cup">]>', "<!-- labelImg -->"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    data = (prolog + doc).encode(encoding, errors="replace")
    if draw(st.integers(0, 19)) == 0:  # truncate
        data = data[:draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=500, **_SETTINGS)
@given(_document())
@example(('<?xml version="1.0"?><annotation><size><width>640.0</width><height>480</height>'
          "</size>" + _obj(" cup ", ("1", "2.5", "30", "40")) + "</annotation>").encode())
@example(b"<annotation><size><width>1e30</width><height>1e30</height></size></annotation>")
@example(b"<annotation><size><width>-inf</width><height>3</height></size></annotation>")
def test_labelimg_like_documents(data):
    _read(data)


def test_a_valid_document_reads_back():
    ann = _read(('<annotation><size><width>640.0</width><height>480</height></size>'
                 + _obj(" cup ", ("1", "2.5", "30", "40")) + "</annotation>").encode())
    assert ann.size_hw == (480, 640)
    assert [(o.name, o.box_xyxy_px) for o in ann.objects] == [("cup", (1.0, 2.5, 30.0, 40.0))]
