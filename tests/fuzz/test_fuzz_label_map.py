"""Property-based fuzzing of the label-map parser and ``--class-pixel`` values.

Only the documented errors may escape (DataError for file content, ConfigError
for options); whatever parses must be a valid label map that round-trips
through its own ``to_text``/``write`` output. Run with
``python -m pytest tests/fuzz/test_fuzz_label_map.py``.
"""

import os
import tempfile

from hypothesis import HealthCheck, example, given, settings, strategies as st

from tfmask.errors import ConfigError, DataError
from tfmask.config.label_map import (MAX_ID, load_label_map, parse_class_pixel, parse_label_map,
                              read_label_map)

_DIR = tempfile.mkdtemp(prefix="tfmask-fuzz-lm-")
_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_valid(lm, pixel_suffix: bool):
    ids = [c.id for c in lm.classes]
    names = lm.names
    assert ids and len(set(ids)) == len(ids) and all(1 <= i <= MAX_ID for i in ids)
    assert len(set(names)) == len(names) and all(isinstance(n, str) and n for n in names)
    for c in lm.classes:
        if pixel_suffix:
            assert len(c.pixel_value) == 1 and 1 <= c.pixel_value[0] <= 255
        else:
            assert c.pixel_value is None


def _check_round_trip(lm):
    again = parse_label_map(lm.to_text(), "again.pbtxt", pixel_suffix=False)
    assert [(c.id, c.name) for c in again.classes] == [(c.id, c.name) for c in lm.classes]
    path = os.path.join(_DIR, "written.pbtxt")
    lm.write(path)
    assert read_label_map(path, pixel_suffix=False).classes == again.classes


# ------------------------------------------------------------------ arbitrary text

_TEXT = st.text(st.characters(codec="utf-8"), max_size=200) | st.text(
    st.sampled_from("item{}<>[]:;,'\"\\#\n\r\t -+.0123456789eExXnameiddisplay_ufÿ²٣"),
    max_size=120)


@settings(max_examples=1000, **_SETTINGS)
@given(_TEXT, st.booleans())
@example("item { id: 1 name: 'a²²²' }", True)  # str.isdigit() digit that int() refuses
@example("item { id: 99999999999999999999999 name: 'a001' }", True)  # above int32
@example("item { id: 1 name: 'a000' }", True)  # pixel 0 is the background
@example("{" * 2000, False)  # RecursionError from the nesting
@example("item " * 1000 + "{" * 1000, False)
@example("item { id: 1 name: 'a\u2028b001' }", True)  # splitlines() split the string
@example("item { id: 1 name: 'x\\n001' }", True)  # a newline in a name must round-trip
def test_arbitrary_text_gives_a_valid_map_or_data_error(text, pixel_suffix):
    try:
        lm = parse_label_map(text, "fuzz.pbtxt", pixel_suffix=pixel_suffix)
    except DataError as exc:
        assert exc.path == "fuzz.pbtxt" and exc.reason
        return
    _check_valid(lm, pixel_suffix)
    _check_round_trip(lm)


# ------------------------------------------------------- structured near-valid maps

_IDS = st.one_of(st.integers(-3, 6), st.integers(-2 ** 70, 2 ** 70),
                 st.sampled_from(["0", "-1", "1.0", "2.5", "1e3", "'7'", "0x10", "007", "true",
                                  "nan", "inf", "ID", "2147483647", "2147483648", "{ }", "[1]",
                                  "[]", ""]))
_BASE_NAMES = st.one_of(st.sampled_from(["speaker", "cup", "a", "", " ", "ö", "x y", "it's",
                                         'q"uote', "back\\slash", "tab\tnl\n", "²²²"]),
                        st.text(max_size=6))
_SUFFIX = st.one_of(st.integers(0, 300).map(lambda v: f"{v:03d}"),
                    st.sampled_from(["", "7", "07", "1000", "²²²", "٣٣٣", "abc"]))


def _quote(s: str, q: str) -> str:
    return q + s.replace("\\", "\\\\").replace(q, "\\" + q).replace("\n", "\\n") + q


@st.composite
def _item(draw):
    fields = []
    if draw(st.integers(0, 9)):
        fields.append(f"id: {draw(_IDS)}")
    name = draw(_BASE_NAMES) + draw(_SUFFIX)
    key = draw(st.sampled_from(["name", "name", "name", "display_name", None]))
    if key:
        fields.append(f"{key}: " + (_quote(name, draw(st.sampled_from("'\"")))
                                    if draw(st.integers(0, 9)) else name))
    if draw(st.booleans()):
        fields.append(f"display_name: {_quote(draw(_BASE_NAMES), chr(39))}")
    for _ in range(draw(st.integers(0, 2))):
        fields.append(draw(st.sampled_from([
            "frequency: 3", "keypoints { id: 0 label: 'nose' }", "unknown { a { b: 1 } }",
            "# a comment\n", "ids: [1, 2]", "name: 5", "id: 2", "} {", "{", ";", ","])))
    fields = draw(st.permutations(fields))
    sep = draw(st.sampled_from([" ", "\n", ", ", "; ", "\n  # c\n  "]))
    opener, closer = draw(st.sampled_from([("{", "}"), ("<", ">"), (": {", "}"), ("{", ""),
                                           ("", "}"), ("{", ">"), ("{{", "}}")]))
    return f"item {opener} {sep.join(fields)} {closer}"


@st.composite
def _label_map_text(draw):
    items = draw(st.lists(_item(), max_size=6))
    if items and draw(st.booleans()):  # duplicate an item (duplicate id and name)
        items.append(draw(st.sampled_from(items)))
    extra = draw(st.sampled_from(["", "", "# header\n", "items { id: 1 }\n", "item: 3\n",
                                  "item { }\n"]))
    return extra + "\n".join(items)


@settings(max_examples=500, **_SETTINGS)
@given(_label_map_text(), st.booleans())
@example("item { id: 1 name: 'speaker076' } item { id: 2 name: 'cup²²²' }", True)
@example("item { id: 1 name: 'speaker٣٣٣' }", True)  # Arabic-Indic digits: int() accepts them
def test_structured_label_maps(text, pixel_suffix):
    path = os.path.join(_DIR, "structured.pbtxt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    try:
        lm = read_label_map(path, pixel_suffix=pixel_suffix)
    except DataError as exc:
        assert exc.path == path and exc.reason
        return
    _check_valid(lm, pixel_suffix)
    _check_round_trip(lm)


@settings(max_examples=300, **_SETTINGS)
@given(st.binary(max_size=80))
@example(b"\xff\xfeitem")
def test_undecodable_file_is_a_data_error(data):
    path = os.path.join(_DIR, "bytes.pbtxt")
    with open(path, "wb") as f:
        f.write(data)
    try:
        lm = read_label_map(path, pixel_suffix=False)
    except DataError as exc:
        assert exc.path == path
        return
    _check_valid(lm, pixel_suffix=False)


# ----------------------------------------------------------- --class-pixel values

_SPEC = st.one_of(
    st.text(max_size=20),
    st.tuples(st.sampled_from(["speaker", "cup", "", " a ", "x=y", "ö"]),
              st.sampled_from(["=", "", "==", " = "]),
              st.lists(st.one_of(st.integers(-5, 300).map(str),
                                 st.sampled_from(["", " ", "²", "٣", "x", "1.5", "0x1", "+3",
                                                  "00076", "9" * 30])),
                       max_size=4).map(",".join)).map("".join))


@settings(max_examples=600, **_SETTINGS)
@given(_SPEC)
@example("a=²")  # isdigit() but not int()-able
@example("a=0")  # the background
@example("a=0,0,0")
def test_class_pixel_spec(spec):
    try:
        name, pixel = parse_class_pixel(spec)
    except ConfigError:
        return
    assert name and name == name.strip()
    assert len(pixel) in (1, 3) and all(0 <= v <= 255 for v in pixel) and any(pixel)
    if len(pixel) == 1:
        assert pixel[0] >= 1


@settings(max_examples=300, **_SETTINGS)
@given(st.lists(st.sampled_from(["speaker", "cup", "mug"]), min_size=1, max_size=3,
                unique=True),
       st.lists(_SPEC, max_size=4))
@example(["speaker"], ["speaker=0"])
def test_load_label_map_with_class_pixels(names, specs):
    path = os.path.join(_DIR, "plain.pbtxt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"item {{ id: {i} name: '{n}' }}\n" for i, n in enumerate(names, 1)))
    try:
        lm = load_label_map(path, specs)
    except (ConfigError, DataError):
        return
    if not specs:
        return  # plain names have no pixel suffix: only an error is expected
    assert lm.names == names
    kinds = {len(c.pixel_value) for c in lm.classes}
    assert len(kinds) == 1
    values = [c.pixel_value for c in lm.classes]
    assert len(set(values)) == len(values) and all(any(v) for v in values)
