"""The app's files: everything it reads lies under one data folder chosen when it starts.

A dashboard is shared with people who must not read the server's files. ``DataRoot`` turns what a user
typed into a path that is inside the root after resolving ``..`` and symbolic links, or refuses with a
message that names only the root; folder scans do not follow links and stop at a file count and a time
limit. The root is ``Explorer(data_root=...)``, else ``$NNRULES_DATA`` (``make app DATA=...``), else the
folder ``data`` beside the notebook.
"""
from __future__ import annotations

import atexit
import errno
import io
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import cast

from nnrules.recording.loading import scan_images

from .errors import UserInputError

__all__ = ["DataRoot", "MAX_SCAN_FILES", "MAX_SCAN_SECONDS", "MAX_UPLOAD_BYTES", "MAX_ZIP_ENTRIES", "UPLOAD_MAX_AGE"]

#: The app's folder scans stop with a message after this many entries or seconds (a shared server).
MAX_SCAN_FILES = 20_000
MAX_SCAN_SECONDS = 10.0
#: Largest upload (a weights file, or a zip's files unpacked together) and most entries in a zip.
MAX_UPLOAD_BYTES = 500 * 2**20
MAX_ZIP_ENTRIES = 20_000
#: Longest path a user may type; upload folders untouched this long (seconds) are removed (see sweep_uploads).
MAX_PATH_CHARS = 1024
UPLOAD_MAX_AGE = 24 * 3600.0


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists, owned by another user (or an id we cannot test): keep its folder
    return True


class DataRoot:
    """Paths under one folder. ``resolve(text)`` → a real path inside it or :class:`UserInputError`."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        root = root or os.environ.get("NNRULES_DATA") or Path.cwd() / "data"
        self.path = Path(root).expanduser().resolve()  # not created: the app writes nothing there

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)

    def show(self, path: Path) -> str:
        """A path inside the root as the user should see it (relative to the root)."""
        rel = path.relative_to(self.path).as_posix()
        return rel if rel != "." else "(the data folder itself)"

    def resolve(self, text: str, what: str) -> Path:
        """The existing path ``text`` names (relative to the root, or absolute inside it)."""
        text = str(text).strip()
        if not text:
            raise UserInputError(f"enter the {what}: a path inside the data folder {self.name!r}")
        if "\x00" in text or len(text) > MAX_PATH_CHARS or any(len(part) > 255 for part in Path(text).parts):
            raise UserInputError(f"the {what} is not a path name (too long or with a NUL character): enter a path "
                                 f"inside the data folder {self.name!r}")
        p = Path(text)
        try:
            real = (p if p.is_absolute() else self.path / p).resolve()  # follows links and ..
            inside = real == self.path or self.path in real.parents
            exists = inside and real.exists()
        except (OSError, ValueError, RuntimeError):  # a link loop, a name the file system refuses
            raise UserInputError(f"the {what} cannot be looked up: enter a path inside the data folder "
                                 f"{self.name!r}") from None
        if not inside:
            raise UserInputError(f"the {what} must be inside the app's data folder {self.name!r}: put the file "
                                 "there and enter its path relative to that folder")
        if not exists:
            raise UserInputError(f"the {what} {self.show(real)!r} does not exist in the data folder {self.name!r}")
        return real

    def listing(self, limit: int = 200) -> list[str]:
        """Files and folders up to two levels down (for a picker), without following links."""
        out: list[str] = []
        if not self.path.is_dir():
            return out
        for top in sorted(self.path.iterdir()):
            if top.is_symlink() or top.name.startswith("."):
                continue
            out.append(self.show(top) + ("/" if top.is_dir() else ""))
            if top.is_dir():
                for sub in sorted(top.iterdir())[:20]:
                    if not sub.is_symlink() and not sub.name.startswith(".") and sub.suffix in (".pt", ".pth"):
                        out.append(self.show(sub))
            if len(out) >= limit:
                break
        return out

    def image_files(self, folder: Path, limit: int, skipped: list[str] | None = None,
                    ) -> tuple[list[tuple[Path, int]], list[str]]:
        """(image path, class index) pairs from ``folder``'s class sub-folders — at most ``limit`` images,
        spread over the classes — and the class names, by :func:`nnrules.recording.loading.scan_images` (no
        links followed, only regular files — the others appended to ``skipped``; at most ``MAX_SCAN_FILES``
        entries and ``MAX_SCAN_SECONDS``); messages name paths relative to the root."""
        try:
            return scan_images(folder, limit, show=self.show, max_files=MAX_SCAN_FILES, max_seconds=MAX_SCAN_SECONDS,
                               skipped=skipped)
        except ValueError as err:
            raise UserInputError(str(err)) from err

    # --- uploads ---------------------------------------------------------------------------------
    def upload_dir(self) -> Path:
        """This session's own temporary folder ``<root>/.uploads/session-<pid>-…``, removed when the kernel
        ends normally, and otherwise by the next session or server start (:meth:`sweep_uploads`)."""
        if getattr(self, "_upload_dir", None) is None:
            base = self.path / ".uploads"
            try:
                base.mkdir(parents=True, exist_ok=True)
                self.sweep_uploads()
                self._upload_dir = Path(tempfile.mkdtemp(prefix=f"session-{os.getpid()}-", dir=base))
            except OSError as err:
                raise UserInputError(f"uploads are off: the data folder {self.name!r} is not writable "
                                     f"({err.strerror})") from None
            atexit.register(shutil.rmtree, self._upload_dir, ignore_errors=True)
        return self._upload_dir

    def sweep_uploads(self, max_age: float = UPLOAD_MAX_AGE) -> list[str]:
        """Remove the upload folders of sessions that are gone: their kernel process no longer runs (a culled
        or killed kernel never runs its exit handlers), or untouched for ``max_age`` seconds. Returns the
        names removed. Folders of live sessions on this machine younger than ``max_age`` are kept."""
        import time

        base, removed = self.path / ".uploads", cast(list[str], [])
        if not base.is_dir() or base.is_symlink():
            return removed
        now = time.time()
        for d in base.iterdir():
            if (d.is_symlink() or not d.is_dir() or not d.name.startswith("session-")
                    or d == getattr(self, "_upload_dir", None)):
                continue
            pid = d.name.split("-")[1]
            try:
                age = now - max([d.stat().st_mtime, *(p.lstat().st_mtime for p in d.iterdir())])
            except (OSError, ValueError):
                age = max_age + 1
            if age > max_age or not (pid.isdigit() and _alive(int(pid))):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d.name)
        return removed

    def save_upload(self, filename: str, content: bytes, suffixes: tuple[str, ...] = (".pt", ".pth")) -> Path:
        """Write an uploaded file into the session's upload folder; returns its path (inside the root)."""
        name = Path(str(filename)).name  # the browser's name, without any folder part
        if not name or name.startswith(".") or Path(name).suffix.lower() not in suffixes:
            raise UserInputError(f"upload a {' or '.join(suffixes)} file, got {name!r}")
        if len(content) > MAX_UPLOAD_BYTES:
            raise UserInputError(f"{name!r} is larger than {MAX_UPLOAD_BYTES // 2**20} MB; put it in the data "
                                 "folder on the server instead")
        out = self.upload_dir() / name
        part = out.with_name(f".partial-{name}")
        try:  # written whole, then put in place: a session killed mid-write leaves no half file under the name
            part.write_bytes(bytes(content))
            os.replace(part, out)
        except OSError as err:
            part.unlink(missing_ok=True)
            raise UserInputError(f"{name!r} could not be saved in the data folder ({err.strerror})") from None
        return out

    def extract_zip(self, filename: str, content: bytes) -> Path:
        """Unpack an uploaded zip of images (one folder per class) into a new folder under the session's
        upload folder. Refused: entries with absolute paths or ``..``, links, more than ``MAX_ZIP_ENTRIES``
        entries or ``MAX_UPLOAD_BYTES`` unpacked. Returns the folder holding the class folders."""
        name = Path(str(filename)).name
        try:
            archive = zipfile.ZipFile(io.BytesIO(bytes(content)))
        except zipfile.BadZipFile:
            raise UserInputError(f"{name!r} is not a zip file: zip a folder with one sub-folder per class") from None
        with archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_ENTRIES:
                raise UserInputError(f"{name!r} has {len(members)} entries; at most {MAX_ZIP_ENTRIES} are unpacked")
            if sum(m.file_size for m in members) > MAX_UPLOAD_BYTES:
                raise UserInputError(f"{name!r} unpacks to more than {MAX_UPLOAD_BYTES // 2**20} MB")
            # unpacked into a hidden folder first and moved into place only when whole
            partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.upload_dir()))
            try:
                for m in members:
                    parts = Path(m.filename).parts
                    if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                        raise UserInputError(f"{name!r} holds an entry outside its own folder ({m.filename[:80]!r}); "
                                             "zip the image folder itself")
                    if stat.S_ISLNK(m.external_attr >> 16) or m.is_dir():
                        continue  # links are never created; folders come with their files
                    out = partial.joinpath(*parts)
                    try:
                        out.parent.mkdir(parents=True, exist_ok=True)
                        with archive.open(m) as src, open(out, "xb") as dst:
                            shutil.copyfileobj(src, dst)
                    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
                        why = ("a name the file system refuses (too long?)" if isinstance(err, OSError)
                               and err.errno in (errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ) else
                               "a name used twice, or both as a file and as a folder" if isinstance(err, OSError) else
                               "damaged data")
                        raise UserInputError(f"{name!r} could not be unpacked: entry {m.filename[:80]!r} has {why}; "
                                             "nothing of it was kept") from None
                target = partial.with_name("images-" + partial.name[len(".partial-"):])
                partial.rename(target)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
        # a zip of one top folder ("digits/0/…"): the class folders are one level down
        entries = [p for p in target.iterdir() if not p.name.startswith(("__MACOSX", "."))]
        if len(entries) == 1 and entries[0].is_dir() and any(c.is_dir() for c in entries[0].iterdir()):
            return entries[0]
        return target
