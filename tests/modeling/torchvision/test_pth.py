"""The restricted .pth reader: torch's files read without torch; hostile pickles refused unrun.

Real files come from torch itself (a subprocess: both serialization formats,
every dtype tfmask reads, strided views of shared storages, a parameter, a
training checkpoint); hostile ones are written here, the way an attacker
would, with pickles whose loading calls ``os.system`` & co.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tfmask.cli import main
from tfmask.errors import DataError
from tfmask.modeling.torchvision.pth import read_pth, read_state_dict

MAKE_FILES = r"""
import collections, sys
import numpy as np, torch
out = sys.argv[1]
torch.manual_seed(0)
sd = collections.OrderedDict()
sd["f32"] = torch.randn(3, 4)
sd["f64"] = torch.randn(5, dtype=torch.float64)
sd["f16"] = torch.randn(2, 3).half()
sd["i64"] = torch.arange(6).reshape(2, 3)
sd["i32"] = torch.arange(4, dtype=torch.int32)
sd["i16"] = torch.arange(4, dtype=torch.int16) - 2
sd["i8"] = torch.arange(4, dtype=torch.int8) - 2
sd["u8"] = torch.arange(250, 254, dtype=torch.uint8)
sd["bool"] = torch.tensor([True, False, True])
base = torch.randn(6, 5)
sd["transposed"] = base.t()          # a strided view of a storage shared with "slice"
sd["slice"] = base[2:, 1:3]          # offset and strides
sd["scalar"] = torch.tensor(7)
sd["empty"] = torch.zeros(0, 3)
sd["param"] = torch.nn.Parameter(torch.ones(2))
torch.save(sd, out + "/zip.pth")
torch.save(sd, out + "/legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"model": sd, "epoch": 3}, out + "/checkpoint.pth")
np.savez(out + "/expected.npz", **{k: v.detach().numpy() for k, v in sd.items()})
"""


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("pth")
    proc = subprocess.run([sys.executable, "-c", MAKE_FILES, str(out)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.mark.parametrize("name", ["zip.pth", "legacy.pth", "checkpoint.pth"])
def test_reads_what_torch_saves(torch_files, name):
    got = read_state_dict(torch_files / name)
    expected = np.load(torch_files / "expected.npz")
    assert list(got) == list(expected.files)  # order kept
    for key in expected.files:
        assert got[key].dtype == expected[key].dtype, key
        assert got[key].shape == expected[key].shape, key
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
        assert got[key].flags.writeable


class _Call:
    """Pickles as a call of ``fn(*args)``: what a malicious .pth does."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _zip_pth(path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")


def _legacy_pth(path, payload: bytes) -> None:
    path.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2)
                     + pickle.dumps({"little_endian": True}, 2) + payload)


HOSTILE = [
    ("os.system", lambda marker: _Call(os.system, f"touch {marker}"), "system"),
    ("eval", lambda marker: _Call(eval, f"open({str(marker)!r}, 'w')"), "builtins.eval"),
    ("exec in a state dict", lambda marker: {"w": _Call(exec, f"open({str(marker)!r}, 'w')")},
     "builtins.exec"),
    ("subprocess", lambda marker: _Call(subprocess.call, ["touch", str(marker)]),
     "subprocess.call"),
]


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("what,payload,name", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_pickle_is_refused_without_running(tmp_path, fmt, what, payload, name):
    marker = tmp_path / "pwned"
    data = pickle.dumps(payload(marker), 2)
    path = tmp_path / "hostile.pth"
    (_zip_pth if fmt == "zip" else _legacy_pth)(path, data)
    with pytest.raises(DataError) as exc:
        read_pth(path)
    assert exc.value.path == str(path)
    assert f"refused: it calls {'posix.system' if name == 'system' else name}" in str(exc.value)
    assert not marker.exists()


def test_hostile_pickle_in_the_legacy_header_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "h.pth"
    path.write_bytes(pickle.dumps(_Call(os.system, f"touch {marker}"), 2))
    with pytest.raises(DataError, match="refused: it calls posix.system"):
        read_pth(path)
    assert not marker.exists()


def test_whole_model_pickles_are_refused(tmp_path):
    # torch.save(model) pickles module classes by name; tfmask reads state dicts only.
    data = b"\x80\x02ctorch.nn.modules.conv\nConv2d\nq\x00)\x81q\x01."  # GLOBAL, NEWOBJ
    _zip_pth(tmp_path / "m.pth", data)
    with pytest.raises(DataError, match="it calls torch.nn.modules.conv.Conv2d"):
        read_pth(tmp_path / "m.pth")


@pytest.mark.parametrize("content,reason", [
    (b"", "not a readable PyTorch checkpoint"),
    (b"not a pickle at all", "not a readable PyTorch checkpoint"),
])
def test_garbage_is_a_clear_error(tmp_path, content, reason):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(DataError, match=reason):
        read_pth(path)


def test_truncated_files(torch_files, tmp_path):
    for name in ("zip.pth", "legacy.pth"):
        data = (torch_files / name).read_bytes()
        cut = tmp_path / name
        cut.write_bytes(data[: len(data) - 40])
        with pytest.raises(DataError):
            read_pth(cut)


def test_missing_file_and_non_state_dict(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_pth(tmp_path / "nope.pth")
    path = tmp_path / "list.pth"
    _zip_pth(path, pickle.dumps([1, 2, 3], 2))
    with pytest.raises(DataError, match="holds no state dict"):
        read_state_dict(path)


def test_cli_from_a_hostile_file_is_one_error_line(tmp_path, capsys):
    """``--from`` checks the published SHA-256 before unpickling anything."""
    marker = tmp_path / "pwned"
    path = tmp_path / "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
    _zip_pth(path, pickle.dumps(_Call(os.system, f"touch {marker}"), 2))
    dest = tmp_path / "pretrained"
    assert main(["pretrained", "torchvision_maskrcnn_resnet50_fpn_coco", "--from", str(path),
                 "--dest", str(dest)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: SHA-256 ")
    assert "is not the published bf2d0c1efbc936eeee2bc95a48e80ebc86b891f61b0106485937fc29f9315fc0" \
        in err[0]
    assert not marker.exists() and not dest.exists()
