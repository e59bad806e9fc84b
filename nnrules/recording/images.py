"""Reading image files with bounded cost: the size is read from the header and checked before any decoding.

A PNG of 230 KB can hold 9000 × 9000 pixels (243 MB as RGB bytes, 972 MB as float32). Every reader here
opens the file lazily (PIL reads the header only), refuses what is not a regular file or is larger than
``max_pixels``, asks JPEG's decoder for a reduced image when a size is wanted (``Image.draft``), and resizes
before converting to floats. Errors are :class:`UnreadableImage` with a reason in words and the file as
``show(path)`` gives it — never PIL's own text, which names the server's absolute path.
"""
from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path
from typing import Callable

from PIL import Image

__all__ = ["MAX_IMAGE_PIXELS", "UnreadableImage", "image_size", "read_image", "rgb"]

#: Images with more pixels than this are refused (a 10,000 × 10,000 photo passes; PIL's own
#: decompression-bomb error starts at ~179 Mpx). Decoding one such image takes ≤ 4 bytes a pixel at a time.
MAX_IMAGE_PIXELS = 100_000_000


class UnreadableImage(ValueError):
    """An image file that cannot or may not be read: ``"<shown> is <reason>"``."""

    def __init__(self, shown: str, reason: str) -> None:
        super().__init__(f"{shown!r} is {reason}")
        self.shown, self.reason = shown, reason


def _open(path: Path, shown: str, max_pixels: int) -> Image.Image:
    """The image, opened lazily (header read, nothing decoded), after the regular-file and size checks."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        raise UnreadableImage(shown, "unreadable (missing, or no permission)") from None
    if not stat.S_ISREG(mode):  # a FIFO, device or socket named like an image would block or never end
        raise UnreadableImage(shown, "not a regular file")
    try:
        with warnings.catch_warnings():  # DecompressionBombWarning: our own limit below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as err:
        px = re.search(r"\((\d+) pixels\)", str(err))
        size = f" ({int(px.group(1)) / 1e6:,.0f} Mpx)" if px else ""
        raise UnreadableImage(shown, f"too large{size}: at most {max_pixels / 1e6:,.0f} Mpx are read") from None
    except (OSError, ValueError, SyntaxError):  # PIL raises all three for files it cannot identify
        raise UnreadableImage(shown, "not an image file PIL can read") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise UnreadableImage(shown, f"too large ({w:,} × {h:,} = {w * h / 1e6:,.0f} Mpx): at most "
                                     f"{max_pixels / 1e6:,.0f} Mpx are read")
    return im


def image_size(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS,
               show: Callable[[Path], str] = str) -> tuple[int, int]:
    """``(width, height)`` from the file's header, without decoding; :class:`UnreadableImage` if it is not a
    regular file, not an image, or over ``max_pixels``."""
    path = Path(path)
    im = _open(path, show(path), max_pixels)
    im.close()
    return im.size


def rgb(im: Image.Image) -> Image.Image:
    """RGB, with transparent parts on white (a plain conversion turns them black)."""
    if not isinstance(im, Image.Image):
        raise TypeError(f"im must be a PIL image, got {type(im).__name__}")
    if im.mode in ("RGBA", "LA", "P", "PA"):
        im = im.convert("RGBA")
        out = Image.new("RGB", im.size, (255, 255, 255))
        out.paste(im, mask=im.getchannel("A"))
        return out
    return im.convert("RGB")


def read_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None,
               max_pixels: int = MAX_IMAGE_PIXELS, show: Callable[[Path], str] = str) -> Image.Image:
    """An RGB image (transparency on white), resized to ``size`` (an int: both sides; ``(width, height)``)
    if given. Decoding holds at most one image at full size; JPEGs are decoded reduced when a size is asked."""
    path = Path(path)
    shown = show(path)
    im = _open(path, shown, max_pixels)
    try:
        target: tuple[int, int] | None = None
        if isinstance(size, tuple):
            target = (int(size[0]), int(size[1]))
        elif size is not None:
            target = (int(size), int(size))
        if target is not None and im.format == "JPEG":
            im.draft("RGB", target)  # the decoder scales by 1/2, 1/4 or 1/8, keeping at least the target size
        out = rgb(im)
        if target is not None and out.size != target:
            out = out.resize(target, Image.Resampling.BILINEAR)
        return out
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        raise UnreadableImage(shown, "damaged or truncated") from None
    except MemoryError:
        raise UnreadableImage(shown, "too large to decode in the memory left") from None
    finally:
        im.close()
