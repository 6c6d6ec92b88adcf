"""check-pixels: colour/gray counts as the converter sees them, warnings, label map,
errors, the CLI and the notebook."""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SIZE_HW, make_dataset
from notebook_kernel import use_this_interpreter
from tfmask.cli import check_pixels, run_reporting_errors
from tfmask.errors import DataError
from tfmask.data.images import load_mask
from tfmask.config.label_map import parse_label_map
from tfmask.data.pixels import find_masks, scan_masks

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "supporting_scripts" / "check_pixel_values.ipynb"


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def gray_mask(size_hw=(20, 30), **rects) -> np.ndarray:
    """Gray mask with rectangles: value=(y0, y1, x0, x1)."""
    arr = np.zeros(size_hw, np.uint8)
    for value, (y0, y1, x0, x1) in rects.items():
        arr[y0:y1, x0:x1] = int(value[1:])
    return arr


def expected_counts(paths, rgb: bool):
    """Pixel and image counts straight from the converter's own mask decoding."""
    pixels, images = Counter(), Counter()
    for p in paths:
        arr = load_mask(p, rgb=rgb)
        values = [tuple(v) for v in arr.reshape(-1, 3)] if rgb else arr.ravel().tolist()
        c = Counter(values)
        pixels.update(c)
        images.update(c.keys())
    return dict(pixels), dict(images)


# ---------------------------------------------------------------- counting


def test_single_gray_mask_counts(tmp_path):
    arr = gray_mask(v76=(2, 6, 3, 13), v150=(10, 18, 5, 25))
    report = scan_masks(save(tmp_path / "m.png", arr))
    assert report.files == (str(tmp_path / "m.png"),)
    assert [(c.gray, c.rgb, c.pixels, c.images) for c in report.colours] == [
        (0, (0, 0, 0), 600 - 40 - 160, 1), (76, (76, 76, 76), 40, 1),
        (150, (150, 150, 150), 160, 1)]
    assert [(g.gray, g.pixels, g.images) for g in report.gray_levels] == [
        (0, 400, 1), (76, 40, 1), (150, 160, 1)]
    assert report.total_pixels == 600
    assert report.class_gray_levels == [76, 150]
    assert report.warnings == ()


@pytest.mark.parametrize("mode", ["L", "RGB", "P"])
def test_folder_counts_match_converter_decoding(tmp_path, mode):
    data = make_dataset(tmp_path / "d", mask_mode=mode)
    masks = sorted((data.root / "train_masks").glob("*.png"))
    report = scan_masks(data.root / "train_masks")
    assert report.files == tuple(str(p) for p in masks)
    gray_px, gray_img = expected_counts(masks, rgb=False)
    rgb_px, rgb_img = expected_counts(masks, rgb=True)
    assert {g.gray: g.pixels for g in report.gray_levels} == gray_px
    assert {g.gray: g.images for g in report.gray_levels} == gray_img
    assert {c.rgb: c.pixels for c in report.colours} == rgb_px
    assert {c.rgb: c.images for c in report.colours} == rgb_img
    assert report.total_pixels == len(masks) * SIZE_HW[0] * SIZE_HW[1]
    # Both masks hold background, only "a" holds speakers (gray 76), both hold cups.
    # conftest's RGB class colours have the classes' gray levels. Both masks
    # hold background and cups (150); only "a" holds speakers (76).
    assert {g.gray: g.images for g in report.gray_levels} == {0: 2, 76: 1, 150: 2}


def test_gray_of_each_colour_matches_convert_L_for_rgba_and_palette(tmp_path):
    rng = np.random.default_rng(1)
    rgba = save(tmp_path / "rgba.png", rng.integers(0, 256, (16, 16, 4), dtype=np.uint8))
    pal = Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), "P")
    pal.putpalette(rng.integers(0, 256, 768).tolist())
    pal.save(tmp_path / "pal.png")
    for path in (rgba, tmp_path / "pal.png"):
        report = scan_masks(path)
        gray = load_mask(path, rgb=False)
        rgb = load_mask(path, rgb=True)
        gray_of = {c.rgb: c.gray for c in report.colours}
        looked_up = np.array([gray_of[tuple(v)] for v in rgb.reshape(-1, 3)])
        np.testing.assert_array_equal(looked_up, gray.ravel())


def test_folder_skips_other_files_hidden_files_and_subfolders(tmp_path):
    save(tmp_path / "b.PNG", gray_mask(v76=(0, 5, 0, 5)))
    save(tmp_path / "a.png", gray_mask(v150=(0, 5, 0, 5)))
    save(tmp_path / ".a.png.123.tmp.png", gray_mask(v200=(0, 5, 0, 5)))
    save(tmp_path / "sub" / "c.png", gray_mask(v99=(0, 5, 0, 5)))
    (tmp_path / "notes.txt").write_text("not a mask")
    Image.fromarray(gray_mask()).save(tmp_path / "photo.jpg")
    assert find_masks(tmp_path) == [tmp_path / "a.png", tmp_path / "b.PNG"]
    report = scan_masks(tmp_path)
    assert [g.gray for g in report.gray_levels] == [0, 76, 150]


def test_many_files_with_progress(tmp_path):
    for i in range(12):
        save(tmp_path / f"m{i:02d}.png", gray_mask(v76=(0, 1 + i, 0, 2)))
    report = scan_masks(tmp_path, progress=True)
    level76 = next(g for g in report.gray_levels if g.gray == 76)
    assert (level76.images, level76.pixels) == (12, sum(2 * (1 + i) for i in range(12)))


# ---------------------------------------------------------------- warnings


def test_rgb_colours_sharing_a_gray_level_are_reported(tmp_path):
    arr = np.zeros((20, 30, 3), np.uint8)
    arr[0:5, 0:5] = (255, 0, 0)  # gray 76
    arr[10:15, 0:5] = (76, 76, 76)  # gray 76 too
    arr[10:15, 10:20] = (0, 0, 255)  # gray 29
    report = scan_masks(save(tmp_path / "m.png", arr))
    level76 = next(g for g in report.gray_levels if g.gray == 76)
    assert level76.rgbs == ((76, 76, 76), (255, 0, 0))
    assert (level76.pixels, level76.images) == (50, 1)  # one mask, though two colours
    assert len(report.warnings) == 1
    assert "(76,76,76), (255,0,0) share gray level 76" in report.warnings[0]
    assert "--class-pixel" in report.warnings[0]
    assert "--class-pixel" in report.suggested_label_map()


def test_dark_colour_that_is_background_in_gray_is_reported(tmp_path):
    arr = np.zeros((20, 30, 3), np.uint8)
    arr[0:5, 0:5] = (1, 0, 0)  # convert('L') -> 0
    report = scan_masks(save(tmp_path / "m.png", arr))
    assert [g.gray for g in report.gray_levels] == [0]
    assert any("(1,0,0) have gray level 0" in w for w in report.warnings)


def test_many_rare_values_look_like_anti_aliasing(tmp_path):
    arr = np.zeros((100, 100), np.uint8)
    arr[20:80, 20:80] = 76
    # A soft edge: one row of each of 20 intermediate values, 5 px each.
    for k in range(20):
        arr[10, 5 * k:5 * k + 5] = 3 * k + 2
    report = scan_masks(save(tmp_path / "m.png", arr))
    assert sum("anti-aliased" in w for w in report.warnings) == 1
    assert "20 of 22 colours" in report.warnings[0]


def test_one_small_class_is_not_anti_aliasing(tmp_path):
    arr = np.zeros((100, 100), np.uint8)
    arr[20:80, 20:80] = 76
    arr[0, 0:3] = 150  # 0.03% of the pixels, but a single value
    assert scan_masks(save(tmp_path / "m.png", arr)).warnings == ()


# ---------------------------------------------------------------- label map


def test_suggested_label_map_parses_to_the_gray_levels(tmp_path):
    report = scan_masks(save(tmp_path / "m.png", gray_mask(v150=(0, 2, 0, 2), v7=(5, 6, 5, 6),
                                                             v76=(9, 12, 9, 12))))
    text = report.suggested_label_map()
    assert text.lstrip().startswith("#") and "Rename" in text
    label_map = parse_label_map(text)
    assert [(c.id, c.pixel_value) for c in label_map.classes] == [(1, (7,)), (2, (76,)),
                                                                  (3, (150,))]
    assert re.findall(r"name: '(\w+)'", text) == ["class1_007", "class2_076", "class3_150"]
    # Renamed the way the comment asks, it is the tutorial's label map.
    renamed = text.replace("class1_", "dust").replace("class2_", "speaker").replace(
        "class3_", "cup")
    assert [(c.name, c.pixel_value) for c in parse_label_map(renamed).classes] == [
        ("dust", (7,)), ("speaker", (76,)), ("cup", (150,))]


def test_all_background_gives_an_empty_suggestion_and_a_warning(tmp_path):
    report = scan_masks(save(tmp_path / "m.png", np.zeros((8, 8), np.uint8)))
    assert "item" not in report.suggested_label_map()
    assert report.warnings == ("every mask is all background (gray 0): no class pixels found",)


# ---------------------------------------------------------------- errors


def _truncated_png(path: Path) -> None:
    save(path, (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64))
    path.write_bytes(path.read_bytes()[:-40])


@pytest.mark.parametrize("name,make,reason", [
    ("garbage.png", lambda p: p.write_bytes(b"this is not an image"), "not a readable image"),
    ("empty.png", lambda p: p.write_bytes(b""), "empty"),
    ("truncated.png", _truncated_png, "truncated or corrupt"),
    ("jpeg.png", lambda p: Image.fromarray(gray_mask()).save(p, format="JPEG"), "JPEG"),
    ("deep.png", lambda p: Image.fromarray(np.zeros((4, 4), np.uint16)).save(p), "16-bit"),
])
def test_bad_mask_names_the_file(tmp_path, name, make, reason):
    save(tmp_path / "a_good.png", gray_mask(v76=(0, 5, 0, 5)))
    make(tmp_path / name)
    for target in (tmp_path / name, tmp_path):
        with pytest.raises(DataError) as err:
            scan_masks(target)
        assert err.value.path == str(tmp_path / name)
        assert reason in err.value.reason


def test_missing_path_and_folder_without_png(tmp_path):
    with pytest.raises(DataError, match="no such mask file or folder") as err:
        scan_masks(tmp_path / "nope")
    assert err.value.path == str(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no .png masks") as err:
        scan_masks(tmp_path / "empty")
    assert err.value.path == str(tmp_path / "empty")


# ---------------------------------------------------------------- CLI


def parse(argv):
    parser = argparse.ArgumentParser()
    check_pixels.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["check-pixels", *argv])


def test_cli_table_and_label_map(tmp_path, capsys):
    data = make_dataset(tmp_path / "d", mask_mode="RGB")
    out = tmp_path / "out" / "label.pbtxt"
    args = parse([str(data.root / "train_masks"), "--write-label-map", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].split() == ["gray", "RGB", "pixels", "images"]
    report = scan_masks(data.root / "train_masks")
    rows = lines[2:2 + len(report.colours)]
    # Aligned: every column ends at the header's column end.
    ends = [m.end() for m in re.finditer(r"\S+", lines[0])]
    for row, c in zip(rows, report.colours):
        assert row.split() == [str(c.gray), "({},{},{})".format(*c.rgb), str(c.pixels),
                               str(c.images)]
        assert row.rstrip().endswith(str(c.images)) and len(row.rstrip()) == ends[-1]
        assert row.index(str(c.pixels)) + len(str(c.pixels)) == ends[2]
    assert report.suggested_label_map() in printed
    assert out.read_text() == report.suggested_label_map()
    assert [p.name for p in out.parent.iterdir()] == ["label.pbtxt"]  # no temp file left


def test_cli_json(tmp_path, capsys):
    mask = save(tmp_path / "m.png", gray_mask(v76=(2, 6, 3, 13)))
    args = parse([str(mask), "--json", "--no-progress"])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == scan_masks(mask).to_dict()
    assert [(c["gray"], c["rgb"], c["pixels"]) for c in data["colours"]] == [
        (0, [0, 0, 0], 560), (76, [76, 76, 76], 40)]
    assert "class1_076" in data["suggested_label_map"]


def test_cli_error_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"nope")
    args = parse([str(tmp_path)])
    assert run_reporting_errors(args.func, args) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"error: {tmp_path / 'bad.png'}: mask is not a readable image file"


# ---------------------------------------------------------------- notebook


def test_committed_notebook_has_no_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])


def _run_notebook(cwd: Path, tmp_path: Path, monkeypatch, mask=None):
    """Executes the notebook in ``cwd`` with this interpreter's kernel."""
    import nbformat
    from nbclient import NotebookClient

    use_this_interpreter(tmp_path, monkeypatch)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if mask is not None:
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        params.source = f"MASK = {mask!r}"
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream")
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    return text, images


def test_notebook_runs_on_the_default_mask_folder(tmp_path, monkeypatch):
    # A stand-in repository: the notebook walks up from its folder to pyproject.toml.
    root = tmp_path / "repo"
    (root / "supporting_scripts").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    make_dataset(root / "dataset")
    text, images = _run_notebook(root / "supporting_scripts", tmp_path, monkeypatch)
    assert f"scanning {root / 'dataset' / 'train_masks'}" in text
    assert re.search(r"^\s+76\s+\(76,76,76\)\s+\d+\s+1$", text, re.M)
    assert re.search(r"^\s+150\s+\(150,150,150\)\s+\d+\s+2$", text, re.M)
    assert "2 mask(s)" in text
    assert "name: 'class1_076'" in text and "name: 'class2_150'" in text
    assert len(images) == 1


def test_notebook_runs_on_a_given_mask(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    (root / "supporting_scripts").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    save(root / "elsewhere" / "m.png", gray_mask(v200=(0, 4, 0, 4)))
    text, images = _run_notebook(root / "supporting_scripts", tmp_path, monkeypatch,
                                 mask="elsewhere/m.png")
    assert re.search(r"^\s+200\s+\(200,200,200\)\s+16\s+1$", text, re.M)
    assert "1 mask(s)" in text and "name: 'class1_200'" in text
    assert len(images) == 1
