"""The schema-free protobuf text-format reader."""

import pytest

from tfmask.errors import DataError
from tfmask.config.textproto import Identifier, Message, parse_text

TEXT = """# a comment
model {
  faster_rcnn {
    num_classes: 3  # trailing comment
    image_resizer { fixed_shape_resizer { height: 128 width: 128 } }
    loss: SMOOTH_L1
    flag: true
    scale: 0.5
    scales: [0.25, 0.5, 1.0]
  }
}
path: 'a/b' "c"
item < id: 1 >
item: { id: 2 }
"""


def test_nested_messages_scalars_and_repeats():
    msg = parse_text(TEXT)
    frcnn = msg.get("model").get("faster_rcnn")
    assert frcnn.get("num_classes") == 3 and frcnn.line_of("num_classes") == 4
    assert frcnn.get("image_resizer").oneof()[0] == "fixed_shape_resizer"
    assert frcnn.get("loss") == "SMOOTH_L1" and isinstance(frcnn.get("loss"), Identifier)
    assert frcnn.get("flag") is True and frcnn.get("scale") == 0.5
    assert frcnn.get_all("scales") == [0.25, 0.5, 1.0]
    assert msg.get("path") == "a/bc"  # adjacent strings concatenate
    assert [m.get("id") for m in msg.get_all("item")] == [1, 2]
    assert isinstance(msg.get("item"), Message)


def test_last_value_wins_and_defaults():
    msg = parse_text("a: 1 a: 2")
    assert msg.get("a") == 2 and msg.get_all("a") == [1, 2] and msg.get("b", 7) == 7


@pytest.mark.parametrize("text,where", [
    ("a { b: 1", "line 1, column 9"),
    ("a: 1\nb 2", "line 2, column 3"),
    ("a: 'unterminated\n", "line 1"),
    ("a: }", "line 1, column 4"),
])
def test_syntax_errors_name_file_line_and_column(text, where):
    with pytest.raises(DataError) as exc:
        parse_text(text, path="pipeline.config")
    assert str(exc.value).startswith("pipeline.config: syntax error at " + where)
