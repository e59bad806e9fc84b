"""The app's files: everything it reads lies under one data folder chosen when it starts.

A dashboard is shared with people who must not read the server's files. ``DataRoot`` turns what a user
typed into a path that is inside the root after resolving ``..`` and symbolic links, or refuses with a
message that names only the root; folder scans do not follow links and stop at a file count and a time
limit. The root is ``Explorer(data_root=...)``, else ``$NNRULES_DATA`` (``make app DATA=...``), else the
folder ``data`` beside the notebook.
"""
from __future__ import annotations

import os
from pathlib import Path

from nnrules.recording.loading import scan_images

from .errors import UserInputError

__all__ = ["DataRoot", "MAX_SCAN_FILES", "MAX_SCAN_SECONDS"]

#: The app's folder scans stop with a message after this many entries or seconds (a shared server).
MAX_SCAN_FILES = 20_000
MAX_SCAN_SECONDS = 10.0


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
        p = Path(text)
        real = (p if p.is_absolute() else self.path / p).resolve()  # follows links and ..
        if real != self.path and self.path not in real.parents:
            raise UserInputError(f"the {what} must be inside the app's data folder {self.name!r}: put the file "
                                 "there and enter its path relative to that folder")
        if not real.exists():
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

    def image_files(self, folder: Path, limit: int) -> tuple[list[tuple[Path, int]], list[str]]:
        """(image path, class index) pairs from ``folder``'s class sub-folders — at most ``limit`` images,
        spread over the classes — and the class names, by :func:`nnrules.recording.loading.scan_images` (no
        links followed; at most ``MAX_SCAN_FILES`` entries and ``MAX_SCAN_SECONDS``); messages name paths
        relative to the root."""
        try:
            return scan_images(folder, limit, show=self.show, max_files=MAX_SCAN_FILES, max_seconds=MAX_SCAN_SECONDS)
        except ValueError as err:
            raise UserInputError(str(err)) from err
