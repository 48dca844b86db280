"""Unit tests for searchcore.images.load_image: every odd input becomes a safe RGB image, or an ImageError."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

import searchcore.images as images
from searchcore.errors import ImageError
from searchcore.images import load_image

WHITE = (255, 255, 255)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


def png_bytes(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kwargs)
    return buf.getvalue()


def pixel(img: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(img)[y, x])


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width×height but that holds no pixel data (decoding it would fail)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)[:8])


# ---- transparency is flattened onto white ------------------------------------------------------------------------
def test_rgba_transparent_pixel_becomes_white_and_opaque_pixel_is_kept():
    arr = np.zeros((16, 16, 4), np.uint8)
    arr[:, :8] = (200, 10, 10, 255)  # opaque red left half
    arr[:, 8:] = (0, 0, 0, 0)  # fully transparent black right half
    out = load_image(Image.fromarray(arr, mode="RGBA"))
    assert out.mode == "RGB"
    assert out.size == (18, 18)  # a cut-out is framed whole on a square, 15 % wider than its longer side
    assert pixel(out, 1 + 2, 1 + 2) == (200, 10, 10)
    assert pixel(out, 1 + 12, 1 + 2) == WHITE
    assert pixel(out, 0, 0) == WHITE


def test_rgba_png_file_is_flattened(tmp_path: Path):
    arr = np.zeros((16, 16, 4), np.uint8)
    arr[:8] = (0, 0, 255, 255)
    path = tmp_path / "cutout.png"
    Image.fromarray(arr, mode="RGBA").save(path)
    out = load_image(path)
    assert out.mode == "RGB"
    assert pixel(out, 3, 3) == (0, 0, 255)
    assert pixel(out, 3, 12) == WHITE


def test_la_transparent_pixel_becomes_white():
    img = Image.new("LA", (16, 16), (0, 0))  # black, fully transparent
    img.paste((40, 255), (0, 0, 8, 16))  # left half: dark grey, opaque
    out = load_image(img)
    assert out.mode == "RGB"
    assert pixel(out, 12, 5) == WHITE
    assert pixel(out, 2, 5) == (40, 40, 40)


def test_palette_with_transparency_becomes_white():
    img = Image.new("P", (16, 16), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    img.paste(1, (0, 0, 8, 16))  # left half uses palette entry 1 (red)
    data = png_bytes(img, transparency=0)  # palette entry 0 (black) is transparent
    assert Image.open(io.BytesIO(data)).mode == "P"
    out = load_image(data)
    assert out.mode == "RGB"
    assert pixel(out, 12, 4) == WHITE
    assert pixel(out, 2, 4) == (255, 0, 0)


# ---- other modes -----------------------------------------------------------------------------------------------
def test_cmyk_becomes_rgb():
    out = load_image(Image.new("CMYK", (16, 16), (0, 255, 255, 0)))
    assert out.mode == "RGB"
    assert pixel(out, 0, 0) == (255, 0, 0)


def test_cmyk_jpeg_file_becomes_rgb(tmp_path: Path):
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (32, 32), (0, 0, 0, 0)).save(path, "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.mode == "RGB"
    assert all(v > 240 for v in pixel(out, 10, 10))  # no ink = white


def test_grayscale_becomes_rgb_with_equal_channels():
    out = load_image(Image.new("L", (16, 16), 77))
    assert out.mode == "RGB"
    assert pixel(out, 5, 5) == (77, 77, 77)


def test_16bit_grayscale_is_rescaled_to_8bit():
    arr = np.zeros((20, 30), np.uint16)
    arr[:10] = 65535
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    out = load_image(img)
    assert out.mode == "RGB"
    assert pixel(out, 0, 0) == WHITE
    assert pixel(out, 0, 15) == (0, 0, 0)


def test_16bit_grayscale_png_bytes_are_rescaled_not_clipped():
    arr = np.full((20, 30), 1000, np.uint16)
    arr[:10] = 3000
    data = png_bytes(Image.fromarray(arr))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = np.asarray(load_image(data))
    # values above 255 must be rescaled by their range, not saturated to one value
    assert out[0, 0, 0] > out[15, 0, 0]
    assert out[0, 0, 0] == 255
    assert out[15, 0, 0] == 0


def test_float_image_mode_f_is_rescaled():
    arr = np.linspace(0.0, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    img = Image.fromarray(arr)
    assert img.mode == "F"
    out = np.asarray(load_image(img))
    assert out.min() == 0 and out.max() == 255


def test_float_array_in_unit_range_keeps_brightness():
    arr = np.full((16, 16, 3), 0.5, np.float32)
    out = load_image(arr)
    assert out.mode == "RGB"
    assert all(abs(v - 128) <= 1 for v in pixel(out, 0, 0))


def test_float_array_outside_unit_range_is_rescaled_by_its_range():
    arr = np.zeros((16, 16), np.float64)
    arr[:8] = -3.0
    arr[8:] = 7.0
    out = load_image(arr)
    assert pixel(out, 0, 0) == (0, 0, 0)
    assert pixel(out, 0, 12) == WHITE


def test_float_array_with_nan_is_readable():
    arr = np.full((16, 16), 0.25, np.float32)
    arr[0, 0] = np.nan
    out = np.asarray(load_image(arr))
    assert out.dtype == np.uint8
    assert abs(int(out[8, 8, 0]) - 64) <= 1


def test_uint16_array_is_rescaled():
    arr = np.zeros((16, 16), np.uint16)
    arr[8:] = 65535
    out = load_image(arr)
    assert pixel(out, 0, 0) == (0, 0, 0)
    assert pixel(out, 0, 12) == WHITE


def test_all_nan_array_is_an_image_error():
    with pytest.raises(ImageError):
        load_image(np.full((16, 16), np.nan, np.float32))


# ---- EXIF orientation ---------------------------------------------------------------------------------------------
def test_exif_orientation_6_is_applied(tmp_path: Path):
    img = Image.new("RGB", (40, 20), (10, 20, 30))
    img.paste((250, 0, 0), (0, 0, 10, 20))  # a red band on the left edge
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "phone.jpg"
    img.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    assert Image.open(path).size == (40, 20)
    out = load_image(path)
    assert out.size == (20, 40)  # width and height swapped
    top = pixel(out, 10, 2)  # after a clockwise turn the left edge is at the top
    assert top[0] > 200 and top[1] < 60


def test_exif_orientation_applied_to_bytes():
    img = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    assert load_image(buf.getvalue()).size == (20, 40)


# ---- numpy arrays ---------------------------------------------------------------------------------------------------
def test_array_hw():
    arr = np.full((12, 20), 90, np.uint8)
    out = load_image(arr)
    assert out.mode == "RGB" and out.size == (20, 12)
    assert pixel(out, 3, 3) == (90, 90, 90)


def test_array_hw1():
    arr = np.full((12, 20, 1), 33, np.uint8)
    out = load_image(arr)
    assert out.mode == "RGB" and out.size == (20, 12)
    assert pixel(out, 3, 3) == (33, 33, 33)


def test_array_hw3_is_kept_exactly():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    out = load_image(arr)
    assert out.mode == "RGB" and out.size == (20, 12)
    np.testing.assert_array_equal(np.asarray(out), arr)


def test_array_hw4_transparent_becomes_white():
    arr = np.zeros((12, 20, 4), np.uint8)
    arr[:, :10] = (5, 6, 7, 255)
    out = load_image(arr)
    assert out.mode == "RGB" and out.size == (23, 23)  # framed: round(20 * 1.15), centred
    assert pixel(out, 1 + 2, 5 + 2) == (5, 6, 7)
    assert pixel(out, 1 + 15, 5 + 2) == WHITE


def test_an_opaque_rgba_image_is_not_framed():
    arr = np.full((12, 20, 4), 255, np.uint8)
    arr[..., :3] = (5, 6, 7)
    out = load_image(arr)
    assert out.size == (20, 12) and pixel(out, 0, 0) == (5, 6, 7)


def test_non_contiguous_array_view_is_read():
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    flipped = arr[:, ::-1]  # Gradio and numpy hand over views like this
    np.testing.assert_array_equal(np.asarray(load_image(flipped)), flipped)


@pytest.mark.parametrize("shape", [(16, 16, 2), (16, 16, 5), (16,), (2, 16, 16, 3)])
def test_array_of_wrong_shape_is_an_image_error(shape):
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros(shape, np.uint8))


# ---- bytes and paths -------------------------------------------------------------------------------------------------
def test_bytes_and_bytearray_input():
    data = png_bytes(Image.new("RGB", (16, 12), (1, 2, 3)))
    for source in (data, bytearray(data)):
        out = load_image(source)
        assert out.mode == "RGB" and out.size == (16, 12)
        assert pixel(out, 0, 0) == (1, 2, 3)


def test_str_and_path_input(tmp_path: Path):
    path = tmp_path / "a.png"
    Image.new("RGB", (16, 12), (9, 8, 7)).save(path)
    for source in (path, str(path)):
        out = load_image(source)
        assert out.size == (16, 12)
        assert pixel(out, 0, 0) == (9, 8, 7)


def test_missing_path_is_an_image_error_naming_it(tmp_path: Path):
    missing = tmp_path / "nothing-here.jpg"
    with pytest.raises(ImageError, match=r"nothing-here\.jpg"):
        load_image(missing)


def test_directory_path_is_an_image_error(tmp_path: Path):
    with pytest.raises(ImageError):
        load_image(tmp_path)


def test_not_an_image_file_is_an_image_error_naming_it(tmp_path: Path):
    path = tmp_path / "notes.jpg"
    path.write_bytes(b"this is plain text, not a JPEG at all" * 10)
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert "notes.jpg" in str(err.value)
    assert "corrupt" in str(err.value) or "truncated" in str(err.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_an_image_error(tmp_path: Path, fmt: str):
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    full = io.BytesIO()
    img.save(full, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert path.name in str(err.value)
    assert "truncated" in str(err.value)


def test_truncated_bytes_are_an_image_error():
    rng = np.random.default_rng(2)
    data = png_bytes(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(ImageError, match="uploaded bytes"):
        load_image(data[: len(data) // 2])


def test_lazily_opened_truncated_pil_image_is_an_image_error(tmp_path: Path):
    rng = np.random.default_rng(4)
    data = png_bytes(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    path = tmp_path / "lazy.png"
    path.write_bytes(data[: len(data) // 2])
    img = Image.open(path)  # PIL reads only the header here; decoding fails later
    with pytest.raises(ImageError):
        load_image(img)


def test_empty_bytes_are_an_image_error():
    with pytest.raises(ImageError):
        load_image(b"")


# ---- size limits ----------------------------------------------------------------------------------------------------
def test_image_above_max_pixels_is_refused_before_decoding(tmp_path: Path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100), (0, 0, 0)).save(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 5_000)

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the image was decoded although it is above the pixel limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match="limit"):
        load_image(path)


def test_png_header_claiming_huge_dimensions_is_refused_without_decoding():
    # 8000×8000 = 64 MP: above MAX_PIXELS (40 MP) but below PIL's own bomb threshold, so searchcore's check decides.
    data = png_header_only(8000, 8000)
    with pytest.raises(ImageError) as err:
        load_image(data)
    assert "8000" in str(err.value) and "limit" in str(err.value)


def test_png_header_claiming_gigantic_dimensions_is_refused():
    with pytest.raises(ImageError, match=r"large|limit"):
        load_image(png_header_only(100_000, 100_000))


@pytest.fixture
def pil_limit(monkeypatch) -> int:
    """PIL's own decompression-bomb limit, restored afterwards (searchcore raises the process-wide global)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    return Image.MAX_IMAGE_PIXELS


def test_max_pixels_above_pils_default_limit_lets_a_bigger_image_through(monkeypatch, pil_limit: int):
    # 9500×9500 = 90.25 MP, just above PIL's default limit (about 89.5 MP, where PIL starts to warn). A 1-bit image
    # compresses to 11 kB and decodes in a fraction of a second.
    assert pil_limit < 9500 * 9500
    data = png_bytes(Image.new("1", (9500, 9500)))
    monkeypatch.setattr(images, "MAX_PIXELS", 100_000_000)
    img = load_image(data)
    assert img.size == (9500, 9500) and img.mode == "RGB"


def test_max_pixels_above_twice_pils_limit_lets_a_bigger_image_through(monkeypatch, pil_limit: int):
    # The same beyond twice PIL's limit, where PIL raises instead of warning; scaled down (a limit of 1,000 pixels
    # stands for PIL's 89.5 MP) so a real photo-sized decode stays cheap.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    monkeypatch.setattr(images, "MAX_PIXELS", 20_000)
    img = load_image(png_bytes(Image.new("RGB", (100, 100), (10, 20, 30))))
    assert img.size == (100, 100) and pixel(img, 5, 5) == (10, 20, 30)
    assert Image.MAX_IMAGE_PIXELS == 20_000  # raised to the setting, so PIL no longer decides


def test_image_above_a_raised_max_pixels_is_refused_with_the_limit(monkeypatch, pil_limit: int):
    monkeypatch.setattr(images, "MAX_PIXELS", 100_000_000)
    with pytest.raises(ImageError) as err:
        load_image(png_header_only(12_000, 10_000))  # 120 MP: above the setting, below twice PIL's limit
    assert str(err.value) == ("The image is 12000×10000 pixels (120 MP), above this server's limit of 100 MP. "
                              "Resize it and try again.")
    with pytest.raises(ImageError) as err:
        load_image(png_header_only(100_000, 100_000))  # 10,000 MP: PIL itself refuses it, with our message
    assert str(err.value) == "The image has more pixels than this server's limit of 100 MP. Resize it and try again."


def test_megapixels_never_round_a_small_image_to_nothing() -> None:
    from searchcore.images import megapixels

    assert [megapixels(n) for n in (400 * 400, 1_000_000, 89_478_485, 120_000_000, 10_000_000_000)] == [
        "0.16 MP", "1 MP", "89.5 MP", "120 MP", "10,000 MP"]


def test_max_pixels_below_pils_limit_leaves_pils_limit_alone(pil_limit: int):
    assert pil_limit > images.MAX_PIXELS
    load_image(png_bytes(Image.new("RGB", (20, 20))))
    assert pil_limit == Image.MAX_IMAGE_PIXELS


def test_huge_array_is_refused(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 1_000)
    with pytest.raises(ImageError, match="limit"):
        load_image(np.zeros((100, 100, 3), np.uint8))


def test_huge_pil_image_is_refused(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 1_000)
    with pytest.raises(ImageError, match="limit"):
        load_image(Image.new("RGB", (100, 100)))


@pytest.mark.parametrize("size", [(4, 4), (100, 3), (1, 1)])
def test_too_tiny_image_is_refused(size):
    with pytest.raises(ImageError, match="at least"):
        load_image(Image.new("RGB", size))


def test_too_tiny_array_is_refused():
    with pytest.raises(ImageError, match="at least"):
        load_image(np.zeros((3, 50, 3), np.uint8))


def test_smallest_allowed_image_is_accepted():
    side = images.MIN_SIDE
    assert load_image(Image.new("RGB", (side, side))).size == (side, side)


# ---- wrong types -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [123, 4.5, None, ["a.jpg"], {"path": "a.jpg"}])
def test_wrong_type_is_an_image_error(source):
    with pytest.raises(ImageError):
        load_image(source)


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)
