"""One home for the commands' errors (``tasks.cli.errors``): one line and exit code 2, Ctrl-C 130, outputs checked
before the work, never overwritten without ``--overwrite``, never named by their temporary files."""

from __future__ import annotations

import errno
import pathlib

import numpy as np
import pytest

from tasks.cli import main
from tasks.cli.errors import error_message
from tests.helpers import one_error_line



def _image(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "image.npz"
    np.savez(path, image=np.arange(24, dtype=np.float32).reshape(2, 3, 4), voxel_size_mm=np.array([2.0, 1.0, 1.0]),
             origin_mm=np.zeros(3))
    return path


def test_os_errors_name_the_users_file_not_a_temporary_one() -> None:
    error = PermissionError(errno.EACCES, "Permission denied", "/data/out/.image.nii.gz.4242.tmp")
    assert error_message(error) == "/data/out/image.nii.gz: Permission denied"
    assert error_message(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"
    assert error_message(ValueError("two\nlines")) == "two lines"


def test_ctrl_c_exits_130_without_a_traceback(tmp_path: pathlib.Path, capsys, monkeypatch) -> None:
    import tasks.cli.convert

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(tasks.cli.convert, "convert", interrupted)
    assert main(["convert", str(_image(tmp_path)), str(tmp_path / "out.npy")]) == 130
    one_error_line(capsys, "allpet convert: interrupted")
    assert tasks.cli.convert.main([str(_image(tmp_path)), str(tmp_path / "out.npy")]) == 130
    one_error_line(capsys, "interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.npz"]


def test_unexpected_errors_without_a_message_are_not_hidden(tmp_path: pathlib.Path, monkeypatch) -> None:
    import tasks.cli.convert

    def bug(args):
        raise ValueError()

    monkeypatch.setattr(tasks.cli.convert, "convert", bug)
    with pytest.raises(ValueError):
        main(["convert", str(_image(tmp_path)), str(tmp_path / "out.npy")])


@pytest.mark.parametrize("name, companion", [("out.npy", None), ("out.nii", None), ("out.hv", "out.v")])
def test_convert_keeps_existing_outputs_unless_told(tmp_path: pathlib.Path, capsys, name, companion) -> None:
    if name.endswith(".nii"):
        pytest.importorskip("nibabel")
    source, out = _image(tmp_path), tmp_path / name
    assert main(["convert", str(source), str(out)]) == 0
    written = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    capsys.readouterr()
    np.savez(source, image=np.ones((2, 3, 4), np.float32), voxel_size_mm=np.ones(3), origin_mm=np.zeros(3))
    assert main(["convert", str(source), str(out)]) == 2
    one_error_line(capsys, str(out), "--overwrite")
    if companion is not None:  # the data file alone is an output too
        out.unlink()
        assert main(["convert", str(source), str(out)]) == 2
        one_error_line(capsys, str(tmp_path / companion), "--overwrite")
        (tmp_path / name).write_bytes(written[name])
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir() if path != source} == \
        {key: value for key, value in written.items() if key != source.name}
    assert main(["convert", str(source), str(out), "--overwrite"]) == 0
    assert out.read_bytes() != written[name]


def test_convert_checks_the_output_before_reading(tmp_path: pathlib.Path, capsys, read_only, monkeypatch) -> None:
    import tasks.cli.convert

    def never(*args, **kwargs):
        raise AssertionError("read the input although the output cannot be written")

    monkeypatch.setattr(tasks.cli.convert, "load_image", never)
    source = _image(tmp_path)
    (tmp_path / "folder.npy").mkdir()
    (tmp_path / "locked").mkdir()
    read_only(tmp_path / "locked")
    for out, word in ((tmp_path / "folder.npy", "folder"), (source / "out.npy", "is not a folder"),
                      (tmp_path / "locked" / "out.npy", "cannot be written")):
        assert main(["convert", str(source), str(out)]) == 2
        line = one_error_line(capsys, str(out.parent if word != "folder" else out), word)
        assert ".tmp" not in line


def test_attention_refuses_a_folder_or_an_existing_file_as_output(tmp_path: pathlib.Path, capsys) -> None:
    from pet_projection.simulation import SimulationConfig, write_dataset

    write_dataset(tmp_path / "d", "low_dose", 1, SimulationConfig(size=16, n_views=12), seed=0, progress=False)
    (tmp_path / "existing").mkdir()
    assert main(["attention", str(tmp_path / "d"), "--out", str(tmp_path / "existing")]) == 2
    one_error_line(capsys, str(tmp_path / "existing"), "folder")
    out = tmp_path / "attention.npz"
    assert main(["attention", str(tmp_path / "d"), "--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["attention", str(tmp_path / "d"), "--out", str(out)]) == 2
    one_error_line(capsys, str(out), "--overwrite")
    assert out.read_bytes() == before
    assert main(["attention", str(tmp_path / "d"), "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attention.npz", "d", "existing"]
