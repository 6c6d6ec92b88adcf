"""Label maps: the pixel-suffix convention, explicit class pixels, validation."""

import pytest

from tfmask.errors import ConfigError, DataError
from tfmask.config.label_map import (load_label_map, parse_class_pixel, parse_label_map,
                              read_label_map)


def test_pixel_suffix_convention():
    lm = parse_label_map("item { id: 1 name: 'speaker076' }\nitem { id: 3 name: \"cup255\" }")
    assert [(c.id, c.name, c.pixel_value) for c in lm.classes] == [
        (1, "speaker", (76,)), (3, "cup", (255,))]
    assert lm.max_id == 3 and not lm.matches_rgb


def test_plain_names_round_trip(tmp_path):
    lm = parse_label_map("item { id: 1 name: 'speaker076' }")
    lm.write(tmp_path / "lm.pbtxt")
    again = read_label_map(tmp_path / "lm.pbtxt", pixel_suffix=False)
    assert again.names == ["speaker"] and again.classes[0].id == 1


@pytest.mark.parametrize("text,match", [
    ("item { id: 1 name: 'a001' ", "syntax error at line 1"),
    ("item { id: 0 name: 'a001' }", "ids must be integers >= 1"),
    ("item { id: 1 name: 'a001' } item { id: 1 name: 'b002' }", "id 1 is used twice"),
    ("item { id: 1 name: 'a001' } item { id: 2 name: 'a002' }", "'a' is used twice"),
    ("item { id: 1 name: 'speaker' }", "does not end in a three-digit mask pixel value"),
    ("item { id: 1 name: 'a300' }", "above 255"),
    ("item { id: 1 name: '076' }", "does not end in a three-digit"),
    ("item { id: 1 name: 'a001' } item { id: 2 name: 'b001' }", "more than one class"),
    ("item { name: 'a001' }", "needs both 'id' and 'name'"),
    ("item { id: 'x' name: 'a001' }", "is not an integer"),
    ("", "has no items"),
    ("items { id: 1 }", "unexpected field 'items'"),
])
def test_label_map_errors_name_the_file(text, match):
    with pytest.raises(DataError) as exc:
        parse_label_map(text, path="label.pbtxt")
    assert str(exc.value).startswith("label.pbtxt: ") and match in str(exc.value)


def test_missing_label_map_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_label_map(tmp_path / "nope.pbtxt")


def test_class_pixel_specs(tmp_path):
    assert parse_class_pixel("speaker=76") == ("speaker", (76,))
    assert parse_class_pixel("cup=255, 0,0") == ("cup", (255, 0, 0))
    for bad in ("speaker", "speaker=", "a=1,2", "a=256", "=3", "a=x"):
        with pytest.raises(ConfigError):
            parse_class_pixel(bad)
    path = tmp_path / "lm.pbtxt"
    path.write_text("item { id: 1 name: 'speaker' } item { id: 2 name: 'cup' }")
    lm = load_label_map(path, ["speaker=1,2,3", "cup=4,5,6"])
    assert lm.matches_rgb and lm.by_name("cup").pixel_value == (4, 5, 6)
    with pytest.raises(ConfigError, match="gives no value for cup"):
        load_label_map(path, ["speaker=1"])
    with pytest.raises(ConfigError, match="mug are not in the label map"):
        load_label_map(path, ["speaker=1", "cup=2", "mug=3"])
    with pytest.raises(ConfigError, match="mix gray levels and RGB"):
        load_label_map(path, ["speaker=1", "cup=2,3,4"])
    with pytest.raises(ConfigError, match="twice"):
        load_label_map(path, ["speaker=1", "speaker=2"])
