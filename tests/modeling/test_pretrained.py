"""Pretrained-weight download: works from a mirror, fails clearly offline, never leaves partials."""

import pytest

from tfmask.errors import ConfigError
from tfmask.modeling.pretrained import CHECKPOINTS, DownloadError, download


def test_download_from_a_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for i, name in enumerate(CHECKPOINTS["resnet50_imagenet"].files):
        (mirror / name).write_bytes(bytes([i]) * 1000)
    files = download("resnet50_imagenet", tmp_path / "pretrained", mirror.as_uri())
    assert [f.read_bytes()[:1] for f in files] == [b"\x00", b"\x01"]
    assert not list((tmp_path / "pretrained").rglob("*.tmp"))
    # Present files are not fetched again (the mirror may be gone).
    assert download("resnet50_imagenet", tmp_path / "pretrained", "file:///nonexistent") == files


def test_offline_is_a_clear_error_and_leaves_nothing(tmp_path):
    # Port 9 on localhost refuses connections: the same path as a machine without network.
    with pytest.raises(DownloadError) as exc:
        download("resnet50_imagenet", tmp_path / "p", "http://127.0.0.1:9/", timeout_s=5)
    message = str(exc.value)
    assert "cannot download http://127.0.0.1:9/ckpt-28080.index" in message
    assert f"put them in {tmp_path / 'p' / 'resnet50_imagenet'}/" in message
    assert not any(p.is_file() for p in (tmp_path / "p").rglob("*"))


def test_unknown_name_lists_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="valid: inception_resnet_v2_imagenet, resnet50_imagenet"):
        download("vgg16", tmp_path)
