"""The batch API (gancomp.batch) through Python: results, names, places, refusals, full disks."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from gancomp import batch
from gancomp.batch import BatchStopped, FileResult, UsageError, compress_files, decompress_files
from gancomp.coding import container
from gancomp.errors import GancompError
from gancomp.io import files as fileio
from gancomp.runtime import codec
from gancomp.runtime.models import available_categories

DATA = Path(__file__).parent / "data"


def _copy(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(DATA / name, folder / name)
    return [folder / name for name in names]


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_result_fields_of_compress_and_decompress(tmp_path, models_dir):
    src = _copy(tmp_path, "flower_0.jpg")[0]
    [res] = compress_files([src], "flower", quality=3, models_dir=models_dir)
    gcz = tmp_path / "flower_0.gcz"
    data = gcz.read_bytes()
    assert res.ok and res.error is None and res.exception is None
    assert (res.path, res.output) == (src, gcz)
    assert res.output_bytes == len(data) and res.input_bytes == src.stat().st_size
    assert (res.width, res.height, res.category, res.quality) == (334, 250, "flower", 3)
    assert res.bpp == pytest.approx(8 * len(data) / (334 * 250))
    assert res.bit_depth_reduced is False
    assert data == codec.compress(src, "flower", 3, models_dir)

    [dec] = decompress_files(gcz, models_dir=models_dir)
    out = tmp_path / "flower_0.decoded.png"
    assert dec.ok and (dec.path, dec.output) == (gcz, out)
    assert dec.output_bytes == out.stat().st_size and dec.input_bytes == len(data)
    assert (dec.width, dec.height, dec.category, dec.quality) == (334, 250, "flower", 3)
    assert dec.bpp == pytest.approx(res.bpp)
    assert Image.open(out).size == (334, 250)


def test_a_bad_file_among_good_ones(tmp_path, models_dir):
    folder = tmp_path / "in"
    good = _copy(folder, "airplane_0.png", "airplane_1.png")
    bad = folder / "b_bad.png"
    bad.write_text("not an image")
    calls: list[tuple[FileResult, int]] = []
    results = compress_files(
        [good[0], bad, good[1]],
        "airplane",
        models_dir=models_dir,
        progress=lambda res, total: calls.append((res, total)),
    )
    assert [r.path for r in results] == [good[0], bad, good[1]]  # input order
    assert [r.ok for r in results] == [True, False, True]
    failed = results[1]
    # One line naming the file once; the exception is kept for tracebacks.
    assert failed.error == f"cannot read '{bad}': not a recognised image file"
    assert isinstance(failed.exception, GancompError) and failed.output_bytes == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["airplane_0.png", "airplane_0.gcz", "airplane_1.png", "airplane_1.gcz", "b_bad.png"]
    )
    # The progress callback saw every input once, in order, with the total.
    assert [(r.path, total) for r, total in calls] == [(r.path, 3) for r in results]
    assert [r for r, _ in calls] == results


def test_a_failed_batch_is_retried_file_by_file(tmp_path, models_dir, monkeypatch):
    """A file that makes the batched network call fail sinks only itself."""
    folder = tmp_path / "in"
    srcs = _copy(folder, "airplane_0.png", "airplane_1.png", "automobile_0.png")
    real = codec.compress_many
    seen = []

    def compress_many(images, category, quality, models_dir):
        seen.append(len(images))
        if any(im.path.endswith("airplane_1.png") for im in images):
            raise GancompError("the network refused this one")
        return real(images, category, quality, models_dir)

    monkeypatch.setattr(codec, "compress_many", compress_many)
    results = compress_files(folder, "airplane", models_dir=models_dir)
    assert seen == [3, 1, 1, 1]  # one batch, then one by one
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error == f"{srcs[1]}: the network refused this one"
    assert (folder / "automobile_0.gcz").read_bytes() == real([srcs[2]], "airplane", 4, models_dir)[
        0
    ]


def test_two_inputs_never_share_one_output(tmp_path, models_dir):
    folder = tmp_path / "in"
    _copy(folder, "flower_1.jpg")
    (folder / "flower_1.jpg").rename(folder / "a.jpg")
    Image.open(DATA / "airplane_0.png").save(folder / "a.png")
    for force in (False, True):
        results = compress_files(folder, "flower", force=force, models_dir=models_dir)
        assert [r.path.name for r in results] == ["a.jpg", "a.png"]
        assert results[0].ok and results[0].output == folder / "a.gcz"
        assert results[1].error == (
            f"{folder / 'a.png'}: output '{folder / 'a.gcz'}' is also the output of "
            f"'{folder / 'a.jpg'}'"
        )
        header = container.unpack((folder / "a.gcz").read_bytes())[0]
        assert header.width != 32  # the jpg's, not replaced by the 32x32 png
        (folder / "a.gcz").unlink()
    # The same file named twice is one output too.
    twice = compress_files([folder / "a.png", folder / "a.png"], "flower", models_dir=models_dir)
    assert [r.ok for r in twice] == [True, False]


def test_force(tmp_path, models_dir):
    src = _copy(tmp_path, "airplane_0.png")[0]
    gcz = tmp_path / "airplane_0.gcz"
    gcz.write_bytes(b"precious")
    [res] = compress_files(src, "airplane", models_dir=models_dir)
    assert res.error == (f"{src}: output file '{gcz}' already exists (use --force to overwrite)")
    assert gcz.read_bytes() == b"precious"
    [res] = compress_files(src, "airplane", force=True, models_dir=models_dir)
    assert res.ok and container.unpack(gcz.read_bytes())[0].category == "airplane"
    decoded = tmp_path / "airplane_0.decoded.png"
    decoded.write_bytes(b"precious")
    [res] = decompress_files(gcz, models_dir=models_dir)
    assert not res.ok and "--force" in res.error and decoded.read_bytes() == b"precious"
    [res] = decompress_files(gcz, force=True, models_dir=models_dir)
    assert res.ok and Image.open(decoded).size == (32, 32)
    assert _hidden(tmp_path) == []


def test_auto_category(tmp_path, models_dir):
    srcs = _copy(tmp_path / "in", "airplane_0.png", "flower_2.jpg")
    results = compress_files(srcs, "auto", quality=2, models_dir=models_dir)
    assert all(r.ok for r in results)
    for r in results:
        assert r.category in available_categories(models_dir) and r.quality == 2
        header = container.unpack(r.output.read_bytes())[0]
        assert (header.category, header.quality) == (r.category, 2)


def test_unknown_model_fails_before_any_work(tmp_path, models_dir):
    src = _copy(tmp_path, "airplane_0.png")[0]
    with pytest.raises(GancompError, match="no model for category 'boat'"):
        compress_files(src, "boat", models_dir=models_dir)
    with pytest.raises(GancompError, match="quality must be"):
        compress_files(src, "airplane", quality=9, models_dir=models_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["airplane_0.png"]


def test_outputs_go_next_to_each_input(tmp_path, models_dir, monkeypatch):
    """One rule for one input and for many: beside the input, whatever the current folder."""
    a = _copy(tmp_path / "a", "airplane_0.png")[0]
    b = _copy(tmp_path / "b", "airplane_1.png")[0]
    monkeypatch.chdir(tmp_path)
    results = compress_files([a, b], "airplane", models_dir=models_dir)
    assert [r.output for r in results] == [a.with_suffix(".gcz"), b.with_suffix(".gcz")]
    results = decompress_files([a.with_suffix(".gcz"), tmp_path / "b"], models_dir=models_dir)
    assert [r.output for r in results] == [
        tmp_path / "a" / "airplane_0.decoded.png",
        tmp_path / "b" / "airplane_1.decoded.png",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_output_argument(tmp_path, models_dir):
    srcs = _copy(tmp_path / "in", "airplane_0.png", "airplane_1.png")
    # Several inputs: a folder, created with its parents.
    out = tmp_path / "new" / "out"
    results = compress_files(srcs, "airplane", output=out, models_dir=models_dir)
    assert [r.output for r in results] == [out / "airplane_0.gcz", out / "airplane_1.gcz"]
    # One input: a file name, or an existing folder to write into.
    one = compress_files(srcs[0], "airplane", output=tmp_path / "x.gcz", models_dir=models_dir)
    assert one[0].output == tmp_path / "x.gcz" and one[0].ok
    [res] = decompress_files(out / "airplane_0.gcz", output=tmp_path / "in", models_dir=models_dir)
    assert res.ok and res.output == tmp_path / "in" / "airplane_0.decoded.png"
    [res] = decompress_files(
        out / "airplane_1.gcz", output=str(tmp_path / "dec") + os.sep, models_dir=models_dir
    )
    assert res.ok and res.output == tmp_path / "dec" / "airplane_1.decoded.png"
    # Outputs that cannot fit the inputs are usage errors (exit status 2), before any work.
    with pytest.raises(UsageError, match="must end in .gcz") as err:
        compress_files(srcs[0], "airplane", output=tmp_path / "x.png", models_dir=models_dir)
    assert err.value.exit_code == 2
    with pytest.raises(UsageError, match="unsupported output extension '.jpg'"):
        decompress_files(out / "airplane_0.gcz", output=tmp_path / "y.jpg", models_dir=models_dir)
    with pytest.raises(UsageError, match="is a file, but several inputs need an output folder"):
        compress_files(srcs, "airplane", output=tmp_path / "x.gcz", models_dir=models_dir)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.jpg").exists()


def test_folders_expand_to_their_images(tmp_path, models_dir):
    folder = tmp_path / "in"
    _copy(folder, "airplane_0.png", "flower_0.jpg")
    Image.open(DATA / "airplane_1.png").save(folder / "anim.gif")
    Image.open(DATA / "airplane_2.png").save(folder / "upper.PNG")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "sub").mkdir()
    results = compress_files(folder, "airplane", models_dir=models_dir)
    names = [r.path.name for r in results]
    assert names == ["airplane_0.png", "anim.gif", "flower_0.jpg", "upper.PNG"]
    assert all(r.ok for r in results)
    assert container.unpack((folder / "anim.gcz").read_bytes())[0].width == 32
    with pytest.raises(GancompError, match="no .gcz files found"):
        decompress_files(tmp_path / "in" / "sub", models_dir=models_dir)
    assert compress_files([], "airplane", models_dir=models_dir) == []


def test_file_info_names_the_file(tmp_path, models_dir):
    gcz = tmp_path / "a.gcz"
    gcz.write_bytes(codec.compress(DATA / "airplane_0.png", "ship", 4, models_dir))
    fields = batch.file_info(gcz)
    assert fields["category"] == "ship" and fields["file_bytes"] == gcz.stat().st_size
    bad = tmp_path / "bad.gcz"
    bad.write_bytes(b"GCZ junk")
    with pytest.raises(GancompError) as err:
        batch.file_info(bad)
    assert str(err.value).startswith(f"{bad}: ")


# -- full disks and read-only folders -----------------------------------------------

FULL_DEVICE = Path("/dev/full")  # every write to it fails with ENOSPC, as on a full disk


def _disk_full_after(monkeypatch, good: int) -> None:
    """The first ``good`` outputs fit; the temp files of later ones sit on a full disk."""
    real = tempfile.NamedTemporaryFile
    created = []

    def named_temporary_file(*args, **kwargs):
        tmp = real(*args, **kwargs)
        created.append(tmp.name)
        if len(created) > good:
            full = os.open(FULL_DEVICE, os.O_WRONLY)
            os.dup2(full, tmp.fileno())  # the real kernel error, through Python's buffering
            os.close(full)
        return tmp

    monkeypatch.setattr(fileio.tempfile, "NamedTemporaryFile", named_temporary_file)


needs_dev_full = pytest.mark.skipif(not FULL_DEVICE.exists(), reason="needs /dev/full (Linux)")


@needs_dev_full
def test_full_disk_stops_the_batch(tmp_path, models_dir, monkeypatch):
    srcs = _copy(tmp_path / "in", "airplane_0.png", "airplane_1.png", "automobile_0.png")
    srcs += _copy(tmp_path / "in", "automobile_1.png", "automobile_2.png")
    out = tmp_path / "out"
    _disk_full_after(monkeypatch, 2)
    seen = []
    with pytest.raises(BatchStopped) as err:
        compress_files(
            srcs,
            "airplane",
            output=out,
            models_dir=models_dir,
            progress=lambda res, total: seen.append(res),
        )
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and _hidden(out) == []  # no temp or partial file
    for name in written:
        container.unpack((out / name).read_bytes())  # complete
    assert sorted(r.output.name for r in err.value.results if r.ok) == written
    assert seen == err.value.results
    assert str(err.value).endswith("No space left on device (stopped after writing 2 of 5 files)")
    assert str(err.value).startswith(f"cannot write '{out}")
    assert isinstance(err.value.__cause__, fileio.NoSpaceError)


@needs_dev_full
def test_full_disk_in_decompress(tmp_path, models_dir, monkeypatch):
    gczs = tmp_path / "gcz"
    srcs = _copy(tmp_path / "in", "airplane_0.png", "airplane_1.png", "automobile_0.png")
    compress_files(srcs, "airplane", output=gczs, models_dir=models_dir)
    _disk_full_after(monkeypatch, 1)
    with pytest.raises(BatchStopped, match=r"stopped after writing 1 of 3 files"):
        decompress_files(gczs, output=tmp_path / "dec", models_dir=models_dir)
    assert len(list((tmp_path / "dec").iterdir())) == 1 and _hidden(tmp_path / "dec") == []


def test_read_only_folder_fails_per_file(tmp_path, models_dir, monkeypatch):
    """An unwritable folder fails the files meant for it, before any coding; others go on."""
    ok = _copy(tmp_path / "ok", "airplane_0.png")[0]
    locked = _copy(tmp_path / "locked", "airplane_1.png")[0]
    real_access = os.access
    monkeypatch.setattr(
        fileio.os,
        "access",
        lambda path, mode, **kw: Path(path) != locked.parent and real_access(path, mode, **kw),
    )
    results = compress_files([locked, ok], "airplane", models_dir=models_dir)
    assert [r.ok for r in results] == [False, True]
    assert results[0].error == (
        f"{locked}: cannot write '{locked.with_suffix('.gcz')}': "
        f"folder '{locked.parent}' is not writable"
    )
    assert sorted(p.name for p in locked.parent.iterdir()) == ["airplane_1.png"]


def test_permission_denied_while_writing_fails_per_file(tmp_path, models_dir, monkeypatch):
    """The folder check can be wrong (network filesystems, ACLs): the write itself decides."""
    ok = _copy(tmp_path / "ok", "airplane_0.png")[0]
    locked = _copy(tmp_path / "locked", "airplane_1.png")[0]
    gczs = [r.output for r in compress_files([locked, ok], "airplane", models_dir=models_dir)]
    real = tempfile.NamedTemporaryFile

    def named_temporary_file(*args, **kwargs):
        if Path(kwargs["dir"]) == locked.parent:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real(*args, **kwargs)

    monkeypatch.setattr(fileio.tempfile, "NamedTemporaryFile", named_temporary_file)
    results = decompress_files(gczs, models_dir=models_dir)
    assert [r.ok for r in results] == [False, True]
    target = locked.parent / "airplane_1.decoded.png"
    assert results[0].error == f"{gczs[0]}: cannot write '{target}': Permission denied"
    assert sorted(p.name for p in locked.parent.iterdir()) == ["airplane_1.gcz", "airplane_1.png"]
    assert (ok.parent / "airplane_0.decoded.png").exists()
