"""One name per concept: hyphenated flags, the OD API's spellings as aliases, and library
errors shown with the flag the user typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfmask.cli import build_parser, main

TINY = Path(__file__).resolve().parents[2] / "configs" / "mask_rcnn_tiny_cpu.config"


def _parse(argv):
    return build_parser().parse_args(argv)


def test_export_accepts_the_od_api_spellings_and_the_hyphenated_ones():
    od_api = _parse(["export", "--pipeline_config_path", "c", "--trained_checkpoint_dir", "t",
                     "--output_directory", "o", "--input_type", "encoded_image_string_tensor",
                     "--min_score", "0.3", "--full_image_masks"])
    ours = _parse(["export", "--pipeline-config-path", "c", "--trained-checkpoint-dir", "t",
                   "--export-dir", "o", "--input-type", "encoded_image_string_tensor",
                   "--min-score", "0.3", "--full-image-masks"])
    for args in (od_api, ours):
        assert (args.pipeline_config_path, args.trained_checkpoint_dir, args.export_dir) == \
            ("c", "t", "o")
        assert (args.input_type, args.min_score, args.full_image_masks) == \
            ("encoded_image_string_tensor", 0.3, True)


def test_train_accepts_model_main_tf2_flags():
    args = _parse(["train", "--pipeline_config_path", "c", "--model_dir", "m",
                   "--num_train_steps", "7", "--checkpoint_every_n", "3"])
    same = _parse(["train", "--pipeline-config-path", "c", "--model-dir", "m",
                   "--num-train-steps", "7", "--checkpoint-every-n", "3"])
    assert vars(args) == vars(same)
    assert (args.model_dir, args.num_train_steps, args.checkpoint_every_n) == ("m", 7, 3)


@pytest.mark.parametrize("command", ["infer", "eval"])
def test_an_export_folder_is_export_dir_everywhere(command):
    extra = ["--images", "i", "--output", "o"] if command == "infer" else \
        ["--gt", "g", "--output", "o"]
    for flag in ("--export-dir", "--model"):
        assert _parse([command, flag, "e", *extra]).export_dir == "e"


def test_help_shows_the_hyphenated_name_first(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "--export-dir EXPORT_DIR, --output_directory EXPORT_DIR" in out
    assert "--min-score MIN_SCORE, --min_score MIN_SCORE" in out


def test_export_errors_name_the_flag(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    rc = main(["export", "--pipeline_config_path", str(TINY), "--trained_checkpoint_dir",
               str(tmp_path), "--output_directory", str(a_file)])
    assert rc == 1
    assert capsys.readouterr().err.strip() == f"error: --export-dir {a_file} is a file"
    rc = main(["export", "--pipeline-config-path", str(TINY), "--trained-checkpoint-dir",
               str(tmp_path), "--export-dir", str(tmp_path / "new"), "--min-score", "nan"])
    assert rc == 1
    assert capsys.readouterr().err.strip() == "error: --min-score must be a number, got nan"


@pytest.mark.parametrize("extra, message", [
    (["--min-score", "2"], "--min-score must be in [0, 1], got 2.0"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
])
def test_infer_errors_name_the_flag(tmp_path, capsys, extra, message):
    rc = main(["infer", "--export-dir", str(tmp_path), "--images", str(tmp_path),
               "--output", str(tmp_path / "out"), *extra])
    assert rc == 1
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_infer_output_that_is_a_file(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    rc = main(["infer", "--model", str(tmp_path), "--images", str(tmp_path),
               "--output", str(a_file)])
    assert rc == 1
    assert capsys.readouterr().err.strip() == f"error: --output {a_file} is a file; give a folder"


def test_library_errors_name_the_parameter_not_the_flag(tmp_path):
    from tfmask.errors import ConfigError
    from tfmask.inference.infer import infer

    with pytest.raises(ConfigError, match=r"^min_score must be in \[0, 1\]") as err:
        infer(tmp_path, tmp_path, tmp_path / "out", min_score=-1)
    assert err.value.params == ("min_score",)
