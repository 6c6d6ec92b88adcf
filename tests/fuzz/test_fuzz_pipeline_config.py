"""Property-based fuzzing of the text-format parser and the pipeline.config translator.

``parse_text`` on arbitrary text may only raise DataError; ``translate`` on
mutations of the shipped tiny config (lines deleted or duplicated, numbers and
identifiers replaced, unknown fields inserted) may only raise DataError or
ConfigError, and a translation it returns agrees with its label map. Run with
``python -m pytest tests/fuzz/test_fuzz_pipeline_config.py``.
"""

import os
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings, strategies as st

from tfmask.errors import ConfigError, DataError
from tfmask.config.translate import translate
from tfmask.config.textproto import Message, parse_text

_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROOT = Path(__file__).resolve().parents[2]

# A config folder beside a records folder, as tests/test_pipeline_config.py lays it out.
_DIR = Path(tempfile.mkdtemp(prefix="tfmask-fuzz-cfg-"))
(_DIR / "records").mkdir()
(_DIR / "records" / "label_map.pbtxt").write_text(
    "item { id: 1 name: 'speaker' } item { id: 2 name: 'cup' } item { id: 3 name: 'bottle' }")
(_DIR / "configs").mkdir()
BASE = (ROOT / "configs" / "mask_rcnn_tiny_cpu.config").read_text().replace(
    "../dataset/records", "../records")
LINES = BASE.split("\n")


def _check_tree(msg):
    assert isinstance(msg, Message)
    for name, value in msg.items():
        assert isinstance(name, str) and name
        assert isinstance(value, (Message, str, int, float, bool)), value
        if isinstance(value, Message):
            _check_tree(value)


# ------------------------------------------------------------------ parse_text

_PROTO_CHARS = st.sampled_from(list("abz_{}<>[]:;,'\"\\#\n\r\t -+.0123456789eExXfFtT") +
                               ["\x00", "\x0b", "\x85", "\u2028", "é"])
_PROTO_WORDS = st.sampled_from(["inf", "nan", "true", "-0x1F", "1e999", "'\\x'", "'\\777'",
                                "\"\\u12\"", "0777", "1.5f", "model", "item", "# c\n"])


@settings(max_examples=1000, **_SETTINGS)
@given(st.text(max_size=200) | st.text(_PROTO_CHARS, max_size=150)
       | st.lists(_PROTO_CHARS | _PROTO_WORDS, max_size=60).map("".join))
@example("a {" * 200)  # RecursionError before the nesting limit
@example("a: [" + "{" * 3000)
@example("a: 'x\u2028y'")  # splitlines() broke the string in two
@example("a: 'x\x85y'")
@example("a: 1e99999 b: -0x7fffffffffffffffffff c: 0777777777777777777777777777")
def test_parse_text_only_raises_data_error(text):
    try:
        msg = parse_text(text, "fuzz.config")
    except DataError as exc:
        assert exc.path == "fuzz.config" and exc.kind == "syntax"
        return
    _check_tree(msg)


def test_separator_characters_inside_strings_are_kept():
    assert parse_text("a: 'x\u2028y' b: 2").get("a") == "x\u2028y"
    err = None
    try:
        parse_text("a: 1\x0b}")
    except DataError as exc:
        err = str(exc)
    assert err is not None and "line 1," in err  # \x0b does not start a line


# -------------------------------------------------------------------- translate

_VALUES = st.one_of(
    st.integers(-3, 300).map(str), st.integers(-2 ** 70, 2 ** 70).map(str),
    st.floats(allow_nan=False).map(repr),
    st.sampled_from(["0", "-1", "0.5", "1e9", "1e400", "-inf", "inf", "nan", "true", "false",
                     "'text'", '"7"', "''", "SOFTMAX", "SIGMOID", "PNG_MASKS", "NUMERICAL_MASKS",
                     "{ }", "{ a: 1 }", "[1, 2]", "[]", "[{ a: 1 }]", "\"\\x00\"",
                     "'PATH_TO_BE_CONFIGURED/x'", "'../records/label_map.pbtxt'",
                     "'/nonexistent/x'", "'../records'"]))
_IDENTS = st.sampled_from(["SOFTMAX", "SIGMOID", "PNG_MASKS", "NUMERICAL_MASKS", "V1", "V2",
                           "faster_rcnn", "ssd", "fixed_shape_resizer", "random_rotate",
                           "adam_optimizer", "rms_prop_optimizer", "exponential_decay_learning_rate",
                           "manual_step_learning_rate", "grid_anchor_generator",
                           "random_rotation90", "random_adjust_hue", "l2_regularizer"])
_FIELDS = st.sampled_from([
    "unknown_field: 3", "frobnicate { a: 1 }", "num_classes: 3", "num_classes: 2",
    "batch_size: 0", "num_steps: -5", "min_level: 1", "max_level: 99", "max_level: 64",
    "maxpool_stride: 0", "initial_crop_size: 0", "mask_height: 0", "mask_width: 13",
    "data_augmentation_options { random_rotation90 { probability: 2 } }",
    "data_augmentation_options { random_adjust_hue { max_delta: -1 } }",
    "data_augmentation_options { random_image_scale { min_scale_ratio: 3 max_scale_ratio: 1 } }",
    "data_augmentation_options { random_distort_color { color_ordering: 'x' } }",
    "data_augmentation_options { }", "data_augmentation_options: 3",
    "freeze_variables: '('", "freeze_variables: '.*'", "update_trainable_variables: 'x'",
    "fine_tune_checkpoint: 'ckpt'", "fine_tune_checkpoint_type: { }",
    "fine_tune_checkpoint_type: 'detection'", "regularizer { l2_regularizer { weight: 'x' } }",
    "grid_anchor_generator { scales: 'a' base_anchor_size: 3 }",
    "grid_anchor_generator { scales: [0.5] base_anchor_size { height: 'x' } }",
    "manual_step_learning_rate { schedule { learning_rate: 1 } }",
    "constant_learning_rate { learning_rate: 'x' }",
    "type: { }", "type: 'faster_rcnn_resnet50_keras'", "metrics_set: { }", "metrics_set: 'x'",
    "label_map_path: 'a\\x00b'", "input_path: ''", "input_path: 5",
    "max_total_detections: 'x'", "score_threshold: [1, 2]", "iou_threshold: inf",
    "gradient_clipping_by_norm: 'x'", "gradient_clipping_by_norm: nan",
])


@st.composite
def _mutated(draw):
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "duplicate", "number", "ident", "insert"]))
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "insert":
            lines.insert(i, draw(_FIELDS))
        else:
            pattern = (r"(?<![\w.])-?\d+(\.\d+)?(?![\w.])" if kind == "number"
                       else r"(?<=: )[A-Za-z_]+\b|'[a-z0-9_]+'")
            hits = [(i, m) for i, line in enumerate(lines)
                    for m in re.finditer(pattern, line)
                    if not line.lstrip().startswith("#")]
            if hits:
                j, m = draw(st.sampled_from(hits))
                if kind == "number":
                    new = draw(_VALUES)
                else:
                    new = draw(_IDENTS)
                    new = f"'{new}'" if draw(st.booleans()) else new
                lines[j] = lines[j][:m.start()] + new + lines[j][m.end():]
    return "\n".join(lines)


def _translate(text):
    path = _DIR / "configs" / "p.config"
    path.write_text(text, encoding="utf-8")
    return translate(path), path


def test_unmutated_config_translates():
    t, _ = _translate(BASE)
    assert t.ignored == [] and t.params.task.model.num_classes == 4


@settings(max_examples=200, **_SETTINGS)
@given(_mutated())
@example(BASE.replace("num_steps: 300", "num_steps: 'many'"))  # ValueError from int()
@example(BASE.replace("max_level: 5 additional", "max_level: 999999999999 additional"))
@example(BASE.replace("maxpool_stride: 2", "maxpool_stride: 0"))  # ZeroDivisionError
@example(BASE.replace("type: 'tfmask_tiny_resnet10_fpn'", "type { }"))  # unhashable
@example(BASE.replace("../records/label_map.pbtxt", "a\\x00b", 1))  # NUL in a path
@example(BASE.replace("num_classes: 3", "num_classes: true"))
@example(BASE.replace("batch_size: 4\n  num_steps", "batch_size: -4\n  num_steps"))
@example(BASE.replace("anchor_scale: 3.0", "anchor_scale: 'big'"))
@example(BASE.replace("mask_height: 28", "mask_height: 1e400"))  # OverflowError from int()
@example(BASE.replace("gradient_clipping_by_norm: 10.0", "gradient_clipping_by_norm: { }"))
def test_translate_mutations(text):
    try:
        t, path = _translate(text)
    except (DataError, ConfigError) as exc:
        assert str(exc)
        return
    assert t.params.task.model.num_classes == len(t.label_map.classes) + 1
    assert t.label_map.max_id == len(t.label_map.classes)
    assert t.config_path == str(path)
