"""Small files that used to knock a kernel over: huge images behind tiny PNGs, decompression bombs, FIFOs
named like images, corrupt images in a folder, odd path names, half-unpackable zips, uploads of dead sessions.
Each answer comes quickly, names the file relative to the data root, and never shows a server path."""
import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nnrules
from nnrules.recording.images import UnreadableImage, image_size, read_image
from nnrules.widgets.state.errors import UserInputError
from nnrules.widgets.state.files import DataRoot
from nnrules.widgets.state import ExplorerState


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A valid 1×1 PNG whose header says ``width × height`` (what a decompression bomb's header says)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    path.write_bytes(bytes(data))
    return path


def _root_with_weights(tmp_path: Path, digits) -> Path:
    root = tmp_path / "root"
    (root / "imgs" / "a").mkdir(parents=True)
    (root / "imgs" / "b").mkdir()
    torch.save(digits.model.state_dict(), root / "w.pt")
    return root


def _digit_png(path: Path, value: int = 0) -> None:
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


def test_bombs_and_huge_headers_get_a_clear_message_within_seconds(tmp_path):
    bomb = _png_claiming(tmp_path / "bomb.png", 20000, 20000)  # over PIL's own decompression-bomb limit
    big = _png_claiming(tmp_path / "big.png", 12000, 12000)  # under PIL's error, over ours
    start = time.monotonic()
    with pytest.raises(UnreadableImage, match=r"'bomb.png' is too large \(400 Mpx\): at most 100 Mpx"):
        read_image(bomb, show=lambda p: p.name)
    with pytest.raises(UnreadableImage, match=r"12,000 × 12,000 = 144 Mpx"):
        image_size(big, show=lambda p: p.name)
    assert image_size(big, max_pixels=200_000_000) == (12000, 12000)  # configurable
    assert time.monotonic() - start < 5
    # the library's image folder reads through the same checks
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    (tmp_path / "imgs" / "a" / "bomb.png").write_bytes(bomb.read_bytes())
    with pytest.raises(UnreadableImage, match="too large"):
        nnrules.image_folder(tmp_path / "imgs")[0]


def test_a_fifo_named_like_an_image_is_skipped_not_read(tmp_path, digits):
    root = _root_with_weights(tmp_path, digits)
    _digit_png(root / "imgs" / "a" / "0.png")
    _digit_png(root / "imgs" / "b" / "1.png", 200)
    os.mkfifo(root / "imgs" / "a" / "x.png")
    state, done = ExplorerState(data_root=root), []
    worker = threading.Thread(target=lambda: done.append(state.load_files("w.pt", "imgs", architecture="digits-cnn")),
                              daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert done, "loading a folder with a FIFO did not return within 30 s"
    assert state.inputs.shape[0] == 2
    assert "imgs/a/x.png (not a regular file)" in state.info
    with pytest.raises(UnreadableImage, match="not a regular file"):
        read_image(root / "imgs" / "a" / "x.png")
    os.mkfifo(root / "fifo.pt")
    with pytest.raises(UserInputError, match="not a regular file"):
        state.load_files("fifo.pt", "imgs", architecture="digits-cnn")
    with pytest.raises(ValueError, match="not a regular file"):
        nnrules.load_model(root / "fifo.pt")


def test_a_folder_with_bad_files_still_loads_and_names_them_from_the_root(tmp_path, digits):
    root = _root_with_weights(tmp_path, digits)
    for i in range(5):
        _digit_png(root / "imgs" / "a" / f"{i}.png")
        _digit_png(root / "imgs" / "b" / f"{i}.png", 255)
    (root / "imgs" / "a" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (root / "imgs" / "b" / "notes.jpg").write_text("not an image")
    truncated = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(truncated, format="PNG")
    (root / "imgs" / "b" / "cut.png").write_bytes(truncated.getvalue()[:300])
    _png_claiming(root / "imgs" / "b" / "bomb.png", 20000, 20000)
    state = ExplorerState(data_root=root).load_files("w.pt", "imgs", architecture="digits-cnn", size=8)
    assert state.inputs.shape == (10, 1, 8, 8) and state.labels.tolist() == [0] * 5 + [1] * 5
    for part in ("Skipped 4 unreadable files", "imgs/a/corrupt.png (not an image file PIL can read)",
                 "imgs/b/notes.jpg (not an image file PIL can read)", "imgs/b/cut.png (damaged or truncated)",
                 "imgs/b/bomb.png (too large (400 Mpx)"):
        assert part in state.info, (part, state.info)
    assert str(tmp_path) not in state.info
    # nothing readable at all: an error that lists them, with no server path
    for f in (root / "imgs" / "a").glob("[0-9].png"):
        f.unlink()
    for f in (root / "imgs" / "b").glob("[0-9].png"):
        f.unlink()
    with pytest.raises(UserInputError, match="no readable images in 'imgs'") as err:
        ExplorerState(data_root=root).load_files("w.pt", "imgs", architecture="digits-cnn", size=8)
    assert str(tmp_path) not in str(err.value) and "corrupt.png" in str(err.value)


_PEAK = r"""
import json, resource, sys, time
from nnrules.widgets.state import ExplorerState
from nnrules.widgets.state.errors import UserInputError
root = sys.argv[1]
ExplorerState(data_root=root)  # imports done before the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {}
t = time.monotonic()
try:
    ExplorerState(data_root=root).load_files("w.pt", "imgs", architecture="digits-cnn")
    out["unsized"] = "loaded"
except UserInputError as err:
    out["unsized"] = str(err)
out["unsized_s"] = time.monotonic() - t
t = time.monotonic()
s = ExplorerState(data_root=root).load_files("w.pt", "imgs", architecture="digits-cnn", size=8)
out["sized_s"] = time.monotonic() - t
out["shape"] = list(s.inputs.shape)
out["peak_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps(out))
"""


@pytest.mark.slow
def test_two_9000px_pngs_stay_within_memory_and_time(tmp_path, digits):
    """Two 9000 × 9000 PNGs (a few hundred KB each): without a size the load is refused from the headers
    (they would take 1.8 GB as inputs); with a size both are decoded one at a time and resized. Peak memory
    growth < 1.5 GB and < 30 s in all, measured in a fresh process."""
    root = _root_with_weights(tmp_path, digits)
    big = np.zeros((9000, 9000), np.uint8)
    big[::97, :] = 255  # not all one colour
    for cls in ("a", "b"):
        Image.fromarray(big).save(root / "imgs" / cls / "huge.png", compress_level=1)
    size_kb = (root / "imgs" / "a" / "huge.png").stat().st_size / 1024
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-c", _PEAK, str(root)], capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - start
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"two 9000×9000 PNGs of {size_kb:.0f} KB: {out} (whole subprocess {wall:.1f} s)")
    assert "would take 1.8 GB" in out["unsized"] and "give a smaller image size" in out["unsized"]
    assert out["unsized_s"] < 5
    assert out["shape"] == [2, 1, 8, 8]
    assert out["peak_growth_mb"] < 1536
    assert out["unsized_s"] + out["sized_s"] < 30


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "x" * 5000, "d/" + "y" * 300, "y" * 300])
def test_every_bad_path_name_is_a_user_error(tmp_path, text):
    with pytest.raises(UserInputError, match="data folder"):
        DataRoot(tmp_path).resolve(text, "model file")


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zips_unpack_whole_or_not_at_all(tmp_path):
    root = DataRoot(tmp_path)
    png = io.BytesIO()
    Image.new("L", (4, 4)).save(png, format="PNG")
    for entries, why in (({"a/b": b"file", "a/b/c.png": png.getvalue()}, "used twice, or both as a file"),
                         ({"a/ok.png": png.getvalue(), "a/" + "n" * 300 + ".png": png.getvalue()},
                          "the file system refuses")):
        with pytest.raises(UserInputError, match=why) as err:
            root.extract_zip("up.zip", _zip(entries))
        assert "nothing of it was kept" in str(err.value)
        assert [p.name for p in root.upload_dir().iterdir()] == []  # no half-extracted folder
    good = root.extract_zip("up.zip", _zip({"digits/a/0.png": png.getvalue(), "digits/b/1.png": png.getvalue()}))
    assert good.name == "digits" and good.parent.name.startswith("images-")
    assert [p.name for p in root.upload_dir().iterdir()] == [good.parent.name]


def test_upload_folders_of_dead_sessions_are_removed(tmp_path, monkeypatch):
    base = tmp_path / ".uploads"
    dead = base / "session-4194305-abc"  # above Linux's largest pid: no such process
    old = base / f"session-{os.getpid()}-old"  # a live process, but untouched for two days
    alive = base / f"session-{os.getpid()}-new"
    legacy = base / "session-xyz"  # an earlier layout without a pid
    for d in (dead, old, alive, legacy):
        d.mkdir(parents=True)
        (d / "w.pt").write_bytes(b"x")
    two_days = time.time() - 2 * 24 * 3600
    for p in (old, old / "w.pt"):
        os.utime(p, (two_days, two_days))
    root = DataRoot(tmp_path)
    mine = root.upload_dir()  # a new session sweeps first
    assert sorted(p.name for p in base.iterdir()) == sorted([alive.name, mine.name])
    # the server sweeps when it starts (folders of kernels from an earlier run)
    dead.mkdir()
    monkeypatch.setenv("NNRULES_DATA", str(tmp_path))
    from nnrules.widgets.server import CappedKernelManager

    CappedKernelManager()
    assert not dead.exists() and alive.exists()


def test_a_folder_without_images_is_not_a_class(tmp_path, digits):
    root = _root_with_weights(tmp_path, digits)
    (root / "imgs" / "a" / "readme.txt").write_text("class a")
    (root / "imgs" / "notes").mkdir()
    (root / "imgs" / "notes" / "readme.txt").write_text("not a class")
    _digit_png(root / "imgs" / "a" / "0.png")
    _digit_png(root / "imgs" / "b" / "1.png", 200)
    files, classes = nnrules.recording.loading.scan_images(root / "imgs")
    assert classes == ["a", "b"] and sorted(c for _, c in files) == [0, 1]
    s = ExplorerState(data_root=root).load_files("w.pt", "imgs", architecture="digits-cnn")
    assert s.labels.tolist() == [0, 1] and "imgs/notes/ (no images: not a class)" in s.info
