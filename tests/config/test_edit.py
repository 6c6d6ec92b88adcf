"""Configs edited as data: text-format writing, field edits, and the demo's config writer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tfmask.config import edit
from tfmask.config.textproto import (Identifier, Message, format_text, parse_text,
                                     read_text_file, write_text_file)
from tfmask.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.config"))
TINY = ROOT / "configs" / "mask_rcnn_tiny_cpu.config"


def data(msg):
    """A Message as plain nested lists (line numbers left out)."""
    return [(name, data(v) if isinstance(v, Message) else (type(v).__name__, v))
            for name, v in msg.items()]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_round_trip(path):
    msg = read_text_file(path)
    assert data(parse_text(format_text(msg))) == data(msg)


def test_scalars_round_trip():
    msg = Message()
    values = {"s": 'a"b\\c\u00e9\n\x00', "i": -7, "big": 2 ** 70, "f": 1e-08, "neg": -0.5,
              "inf": math.inf, "minf": -math.inf, "t": True, "e": Identifier("SOFTMAX")}
    for key, value in values.items():
        msg.set(key, value)
    msg.set("nested.deeper.list", [0.25, 0.5])
    msg.set("empty", Message())
    back = parse_text(format_text(msg))
    for key, value in values.items():
        assert back.get(key) == value and type(back.get(key)) is type(value), key
    assert back.get_path("nested.deeper").get_all("list") == [0.25, 0.5]
    assert back.get("empty").fields == {}
    assert math.isnan(parse_text(format_text(parse_text("x: -nan"))).get("x"))


def test_set_remove_get_path():
    msg = parse_text("a { b: 1 c: 'x' } r: 1 r: 2")
    msg.set("a.b", 5)
    msg.set("r", [7])
    msg.set("new.leaf", "y")
    msg.remove("a.c")
    msg.remove("absent.field")
    assert format_text(msg) == 'a {\n  b: 5\n}\nr: 7\nnew {\n  leaf: "y"\n}\n'
    assert msg.get_path("a.b") == 5 and msg.get_path("a.zz", 3) == 3
    with pytest.raises(ValueError, match="r holds 7, not a message"):
        msg.set("r.x", 1)


def test_write_text_file_header(tmp_path):
    write_text_file(tmp_path / "p.config", parse_text("a: 1"), header="made here\nsecond")
    assert (tmp_path / "p.config").read_text() == "# made here\n# second\na: 1\n"


def _reformatted(text: str) -> str:
    """The tiny config with other whitespace, order, comments and bracket styles."""
    msg = parse_text(text)
    top = list(msg.fields.items())[::-1]  # eval_input_reader first, model last
    out = ["# reformatted by hand: nothing where the shipped file has it"]
    for name, values in top:
        for value in values:
            body = format_text(value).replace("\n", "  # c\n" if name == "model" else " ")
            out.append(f"{name}<{body}>" if name == "train_input_reader"
                       else f"{name}   {{\n\t{body}}}")
    return "\n\n".join(out) + "\n"


def test_demo_config_writer_reads_fields_not_text(tmp_path):
    from tfmask.config.translate import translate
    from tfmask.demo import write_demo_config

    template = tmp_path / "tiny_reformatted.config"
    template.write_text(_reformatted(TINY.read_text()))
    assert "num_classes: 3\n" not in template.read_text()  # str.replace would find nothing
    records = tmp_path / "records"
    records.mkdir()
    (records / "label_map.pbtxt").write_text("item { id: 1 name: 'a' } item { id: 2 name: 'b' }")
    (tmp_path / "out").mkdir()
    path = write_demo_config(records, tmp_path / "out", num_classes=2, num_steps=50,
                             template=template)
    msg = read_text_file(path)
    assert msg.get_path("model.faster_rcnn.num_classes") == 2
    assert msg.get_path("train_config.num_steps") == 50
    cosine = edit.learning_rate(msg)
    assert (cosine.get("total_steps"), cosine.get("warmup_steps")) == (50, 5)
    reader = msg.get("train_input_reader")
    assert reader.get("label_map_path") == str(records.resolve() / "label_map.pbtxt")
    assert reader.get_path("tf_record_input_reader.input_path") == \
        str(records.resolve() / "train-?????-of-?????")
    t = translate(path)
    assert t.ignored == [] and t.params.task.model.num_classes == 3
    assert t.params.trainer.train_steps == 50
    assert t.params.task.validation_data.input_path == [
        str(records.resolve() / "val-?????-of-?????")]
    # Everything else as shipped: the same experiment as the shipped file's edit.
    shipped = write_demo_config(records, tmp_path, num_classes=2, num_steps=50)
    assert translate(shipped).params.as_dict() == t.params.as_dict()


def test_edits(tmp_path):
    msg = read_text_file(ROOT / "configs" / "mask_rcnn_inception_resnet_v2_1024x1024.config")
    edit.set_image_size(msg, 256)
    edit.set_batch_size(msg, 2)
    edit.remove_fine_tune_checkpoint(msg)
    edit.set_num_steps(msg, 9)
    assert msg.get_path("model.faster_rcnn.image_resizer.fixed_shape_resizer.height") == 256
    assert msg.get_path("model.faster_rcnn.image_resizer.fixed_shape_resizer.width") == 256
    assert msg.get_path("train_config.batch_size") == 2
    assert msg.get_path("train_config.fine_tune_checkpoint") is None
    assert edit.learning_rate(msg).get("total_steps") == 9
    tiny = read_text_file(TINY)
    edit.set_image_size(tiny, 64)
    resizer = tiny.get_path("model.faster_rcnn.image_resizer.keep_aspect_ratio_resizer")
    assert (resizer.get("min_dimension"), resizer.get("max_dimension")) == (64, 64)
    with pytest.raises(ConfigError, match="image_resizer must be"):
        edit.set_image_size(parse_text("model { faster_rcnn { } }"), 64)
    with pytest.raises(ConfigError, match="no warmup_steps"):
        edit.set_num_steps(parse_text("train_config { }"), 5, warmup_steps=1)
