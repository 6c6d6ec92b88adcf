"""tfmask pretrained torchvision_maskrcnn_resnet50_fpn[_v2]_coco: SHA-256, offline, --from.

No network here: downloads come from a file:// mirror, the published digests
are swapped for those of test files where a run must succeed, and offline is
a refused localhost port.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from tfmask.cli import main
from tfmask.errors import DataError
from tfmask.modeling import pretrained
from tfmask.modeling.pretrained import DownloadError, download, sha256_of
from tfmask.modeling.torchvision.download import VERSIONS, fetch_and_convert

from torchvision_testlib import reference

V1 = "torchvision_maskrcnn_resnet50_fpn_coco"
V1_FILE = "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"


def _with_sha(monkeypatch, name, digest):
    ckpt = pretrained.CHECKPOINTS[name]
    monkeypatch.setitem(pretrained.CHECKPOINTS, name, dataclasses.replace(ckpt, sha256=(digest,)))


def test_published_entries():
    for name, version in VERSIONS.items():
        ckpt = pretrained.CHECKPOINTS[name]
        assert ckpt.base_url == "https://download.pytorch.org/models/"
        # torchvision's file names carry the first 8 hex digits of the SHA-256.
        assert ckpt.files[0].rsplit("-", 1)[1] == ckpt.sha256[0][:8] + ".pth"
        assert len(ckpt.sha256[0]) == 64 and ckpt.size_mb > 100


def test_offline_says_what_to_fetch_and_the_from_command(tmp_path):
    with pytest.raises(DownloadError) as exc:
        fetch_and_convert(V1, tmp_path / "p", base_url="http://127.0.0.1:9/", timeout_s=5)
    message = str(exc.value)
    assert f"cannot download http://127.0.0.1:9/{V1_FILE}" in message
    assert f"tfmask pretrained {V1} --from {V1_FILE}" in message and "178 MB" in message
    assert not any(p.is_file() for p in (tmp_path / "p").rglob("*"))


def test_download_checks_the_sha256_and_keeps_nothing_on_a_mismatch(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / V1_FILE).write_bytes(b"x" * 1000)
    with pytest.raises(DataError) as exc:
        download(V1, tmp_path / "d", mirror.as_uri())
    assert "is not the published bf2d0c1e" in str(exc.value) and "nothing was kept" in str(
        exc.value)
    assert not any(p.is_file() for p in (tmp_path / "d").rglob("*"))
    # The right bytes pass, and a file already there is checked again.
    _with_sha(monkeypatch, V1, sha256_of(mirror / V1_FILE))
    (got,) = download(V1, tmp_path / "d", mirror.as_uri())
    assert got.read_bytes() == b"x" * 1000
    got.write_bytes(b"y" * 1000)
    with pytest.raises(DataError, match="delete it and download again"):
        download(V1, tmp_path / "d", mirror.as_uri())


def test_cli_converts_a_file_from_disk(tmp_path_factory, tmp_path, monkeypatch, capsys):
    weights = reference(tmp_path_factory, "v1") / "weights.pth"
    _with_sha(monkeypatch, V1, sha256_of(weights))
    dest = tmp_path / "pretrained"
    assert main(["pretrained", V1, "--from", str(weights), "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "torchvision Mask R-CNN R50-FPN v1 converted (307 tensors" in out
    assert "published COCO val2017: box AP 37.9, mask AP 34.6" in out
    folder = dest / V1
    record = json.loads((folder / "conversion.json").read_text())
    assert record["sha256"] == sha256_of(weights) and record["num_classes"] == 91
    assert (folder / "ckpt-0.index").is_file() and not (dest / "downloads").exists()
    assert "model_checkpoint_path: \"ckpt-0\"" in (folder / "checkpoint").read_text()
    labels = (folder / "label_map.pbtxt").read_text()
    assert labels.count("item {") == 80 and "id: 90\n  name: 'toothbrush'" in labels
    assert "N/A" not in labels
    # The folder is complete or absent: a failed second run leaves the first intact.
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not torch")
    _with_sha(monkeypatch, V1, sha256_of(bad))
    assert main(["pretrained", V1, "--from", str(bad), "--dest", str(dest)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {bad}: not a readable PyTorch")
    assert json.loads((folder / "conversion.json").read_text()) == record
    assert not [p for p in os.listdir(dest) if p.startswith(".")]


def test_from_is_for_torchvision_weights(tmp_path, capsys):
    assert main(["pretrained", "resnet50_imagenet", "--from", str(tmp_path / "x"),
                 "--dest", str(tmp_path)]) == 1
    assert "--from converts torchvision weights" in capsys.readouterr().err
