"""Turn whatever image a user hands in into a safe RGB ``PIL.Image``.

Uploads come as paths, bytes, numpy arrays (Gradio) or PIL images, in any mode PIL can open. This module is the
one place that decides how odd inputs become RGB: transparency is flattened onto white (the seed's stamps and
many PNGs are cut-outs), CMYK and palette images are converted, 16-bit and float data are rescaled, EXIF rotation
is applied, and images above a pixel budget are refused before they are decoded (decompression bombs).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

#: The most pixels an input image may have (width × height), from ``$SEARCH_MAX_PIXELS``. 40 MP covers any camera
#: photo. It is checked before decoding, and it governs even above PIL's own decompression-bomb limit
#: (``Image.MAX_IMAGE_PIXELS``, about 89.5 MP), which is raised to it when lower (see :func:`_allow_pil`).
MAX_PIXELS = int(os.environ.get("SEARCH_MAX_PIXELS", 40_000_000))
#: Images smaller than this on either side are refused: there is nothing to recognise.
MIN_SIDE = 8

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray


def _open(source: ImageInput) -> Image.Image:
    if source is None:
        raise ImageError("No image given: upload a photo, paste one, or pick an example.")
    if isinstance(source, Image.Image):
        _check_size(source.size)
        try:
            source.load()  # a lazily opened PIL image may still hide a truncated file
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"Could not read the image ({type(exc).__name__}: {exc}). The file may be corrupt or "
                             "truncated; try saving it again as JPEG or PNG.") from exc
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    folder = ""
    if isinstance(source, (bytes, bytearray)):
        stream: io.BytesIO | Path = io.BytesIO(source)
        name = "the uploaded bytes"
    elif isinstance(source, (str, os.PathLike)):
        stream = Path(source)
        # Named by its base name only: an upload lives in the server's temporary folder (Gradio keeps the name the
        # user gave it), and a message may reach a public page, which must not show the server's folders.
        name, folder = f"'{stream.name}'", str(stream.parent)
        if not stream.is_file():
            raise ImageError(f"No image file {name}. Check the file name or upload the image again.")
    else:
        raise ImageError(f"Cannot read an image from a {type(source).__name__}; pass a path, bytes or a PIL image.")
    _allow_pil()
    try:
        with warnings.catch_warnings():
            # PIL warns between its limit and twice it; _check_size below decides instead, naming our limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(stream)
            _check_size(img.size)
            img.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # above twice PIL's limit, which _allow_pil keeps at or above ours
        raise ImageError(f"The image has more pixels than this server's limit of {megapixels(MAX_PIXELS)}. Resize "
                         "it and try again.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"Could not read {name} as an image ({type(exc).__name__}: {_without_folder(str(exc), folder)}). "
            "The file may be corrupt or truncated; try saving it again as JPEG or PNG."
        ) from exc
    return img


def _without_folder(text: str, folder: str) -> str:
    """PIL's own message with the file's folder taken out (PIL quotes the full path: ``cannot identify image file
    '/tmp/gradio/<hash>/z.png'``)."""
    if not folder or folder == ".":
        return text
    for prefix in {folder, str(Path(folder).resolve())}:
        text = text.replace(prefix.rstrip(os.sep) + os.sep, "")
    return text


def _allow_pil() -> None:
    """Raise PIL's decompression-bomb limit to ``MAX_PIXELS`` when that is higher, so our setting decides.

    ``Image.open`` refuses images above twice ``Image.MAX_IMAGE_PIXELS`` (and warns above it) before we see their
    size, so without this a ``SEARCH_MAX_PIXELS`` above PIL's limit could not take effect. The limit is a
    process-wide global: it is only ever raised, never restored, because a temporary change would race with other
    threads' decodes. It is never lowered either (a smaller ``MAX_PIXELS`` is enforced by :func:`_check_size`), and
    a limit someone disabled (``None``) stays disabled.
    """
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _from_array(arr: np.ndarray) -> Image.Image:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"An image array must be H×W or H×W×{{1,3,4}}; got shape {arr.shape}.")
    _check_size((arr.shape[1], arr.shape[0]))
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8:
        arr = _to_uint8(arr.astype(np.float64))
    mode = "L" if arr.ndim == 2 else ("RGB" if arr.shape[2] == 3 else "RGBA")
    return Image.fromarray(np.ascontiguousarray(arr), mode=mode)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Rescale 16-bit or float data into 0..255 by its own range, as viewers do."""
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise ImageError("The image holds no finite pixel values.")
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0  # float images in [0, 1] keep their brightness
    elif lo >= 0.0 and hi <= 255.0:
        lo, hi = 0.0, 255.0
    scaled = (np.nan_to_num(arr, nan=lo) - lo) / max(hi - lo, 1e-12)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def megapixels(pixels: int) -> str:
    """``pixels`` as a message shows them: three significant figures (0.16 MP, 89.5 MP), whole above 100 (120 MP,
    10,000 MP), so a small image or limit never reads as 0 MP."""
    mp = pixels / 1e6
    return f"{mp:,.0f} MP" if mp >= 100 else f"{mp:.3g} MP"


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"The image is {width}×{height} pixels ({megapixels(width * height)}), above "
            f"this server's limit of {megapixels(MAX_PIXELS)}. Resize it and try again."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"The image is {width}×{height} pixels; it needs at least {MIN_SIDE} pixels on each side.")


CUTOUT_MARGIN = 0.15  # more than a 0.875 centre crop removes (6.25 % a side), so the object stays whole


def to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Any PIL mode → RGB, transparency flattened onto ``background``."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        img = Image.fromarray(_to_uint8(np.asarray(img, dtype=np.float64)), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")  # palette transparency becomes real alpha
    if img.mode in ("LA", "La", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa"):
        alpha = img.getchannel("A")
        base = Image.new("RGB", img.size, background)
        base.paste(img, mask=alpha)
        return frame(base, background) if alpha.getextrema()[0] == 0 else base
    return img.convert("RGB") if img.mode != "RGB" else img


def frame(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """A cut-out object centred on a square with a margin, so a model's centre crop never cuts it.

    A photo with transparent pixels is an object cut out of its scene (Tux Paint's stamps); its extent is the
    subject, unlike a photo's, whose edges the usual centre crop may trim (``bench/bench_quality.py`` measures
    what framing changes on the Tux Paint collection).
    """
    side = round(max(img.size) * (1 + CUTOUT_MARGIN))
    out = Image.new("RGB", (side, side), background)
    out.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return out


def load_image(source: ImageInput) -> Image.Image:
    """Read ``source`` and return an RGB image with EXIF rotation applied; raise :class:`ImageError` if unusable."""
    img = _open(source)
    _check_size(img.size)
    with contextlib.suppress(ValueError, TypeError, KeyError, SyntaxError):  # broken EXIF must not sink an image
        img = ImageOps.exif_transpose(img) or img
    try:
        return to_rgb(img)
    except (OSError, ValueError) as exc:
        raise ImageError(f"Could not convert the image (mode {img.mode}) to RGB: {exc}.") from exc
