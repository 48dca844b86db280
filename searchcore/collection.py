"""Image collections: which photos a bundle is built from, with a label and a caption for each.

* :func:`folder_collection`: a folder of class folders (the seed's layout, ``dining_table/xyz.jpg``); the label is
  the folder name with ``_`` read as a space.
* :func:`tuxpaint_collection`: the real-photo stamps of Debian's ``tuxpaint-stamps-default`` (labels from the
  deepest category folder, captions from the ``.txt`` beside each PNG; ``symbols/``, cartoons and mirror copies left
  out).
* :func:`samples_collection`: scikit-image's bundled photos (astronaut, chelsea, coffee, …).

Paths in :class:`Item` are relative to :attr:`Collection.root`, so a collection can be copied into a bundle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .errors import AssetSourceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
TUXPAINT_ROOT = Path(os.environ.get("TUXPAINT_STAMPS", "/usr/share/tuxpaint/stamps"))

# scikit-image photos that ship inside the package (no pooch download), with a label a word vector knows.
SKIMAGE_SAMPLES = {
    "astronaut.png": ("astronaut", "Astronaut Eileen Collins in her flight suit."),
    "chelsea.png": ("cat", "Chelsea the cat, a tabby."),
    "coffee.png": ("coffee", "A cup of espresso coffee on a saucer."),
    "rocket.jpg": ("rocket", "A Falcon rocket on its launch pad."),
    "motorcycle_left.png": ("motorcycle", "A motorcycle, left view of a stereo pair."),
    "motorcycle_right.png": ("motorcycle", "A motorcycle, right view of a stereo pair."),
    "hubble_deep_field.jpg": ("galaxy", "The Hubble deep field: thousands of galaxies."),
    "ihc.png": ("microscope", "A tissue sample stained for immunohistochemistry."),
    "camera.png": ("photographer", "A photographer with a camera on a tripod."),
    "coins.png": ("coins", "Old Greek coins on a dark background."),
}


class Item(NamedTuple):
    id: int
    path: str  # relative to the collection root (or the bundle's images/ folder)
    label: str
    caption: str
    captions: tuple[str, ...] = ()  # every caption when a collection has several (Pascal Sentences has five)


@dataclass
class Collection:
    name: str
    root: Path
    items: list[Item]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[str]:
        return sorted({item.label for item in self.items})

    def path(self, item: Item) -> Path:
        return self.root / item.path


def _numbered(rows: list[tuple[str, str, str]]) -> list[Item]:
    return [Item(i, path, label, caption) for i, (path, label, caption) in enumerate(sorted(rows))]


def folder_collection(root: str | os.PathLike, name: str | None = None) -> Collection:
    """Every image under ``root/<class>/``; the label is ``<class>`` with underscores as spaces."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise AssetSourceError(f"No folder at {base}; pass a folder with one sub-folder of images per class.")
    rows = []
    for path in base.rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and path.parent != base:
            rel = path.relative_to(base)
            label = rel.parts[0].replace("_", " ").strip().lower()
            rows.append((rel.as_posix(), label, f"{label}: {path.stem.replace('_', ' ')}"))
    if not rows:
        raise AssetSourceError(f"No images in class folders under {base} (expected {base}/<class>/<image>.jpg).")
    return Collection(name or base.name, base, _numbered(rows))


def _tuxpaint_caption(png: Path) -> str:
    txt = png.with_suffix(".txt")
    if txt.is_file():
        first = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        if first and first[0].strip():
            return first[0].strip()
    return png.stem.replace("-", " ").replace("_", " ")


def tuxpaint_collection(root: str | os.PathLike | None = None) -> Collection:
    """The photo stamps of Tux Paint (Debian: ``apt-get install tuxpaint-stamps-default``)."""
    base = Path(root) if root else TUXPAINT_ROOT
    if not base.is_dir():
        raise AssetSourceError(f"No Tux Paint stamps at {base}; run: apt-get install tuxpaint-stamps-default "
                               "(or set TUXPAINT_STAMPS to their folder).")
    rows = []
    for png in base.rglob("*.png"):
        rel = png.relative_to(base)
        if rel.parts[0] == "symbols" or "cartoon" in rel.parts[:-1] or "_mirror" in png.stem or len(rel.parts) < 2:
            continue
        rows.append((rel.as_posix(), rel.parts[-2].replace("_", " ").lower(), _tuxpaint_caption(png)))
    if not rows:
        raise AssetSourceError(f"No photo stamps under {base}; reinstall tuxpaint-stamps-default.")
    return Collection("tuxpaint", base, _numbered(rows))


def samples_collection() -> Collection:
    """scikit-image's bundled photos (no download): the smallest real collection, always available offline."""
    try:
        import skimage
    except ImportError as exc:
        raise AssetSourceError("The sample photos need scikit-image: pip install scikit-image") from exc
    base = Path(skimage.__file__).parent / "data"
    rows = [(name, label, caption) for name, (label, caption) in SKIMAGE_SAMPLES.items() if (base / name).is_file()]
    if not rows:
        raise AssetSourceError(f"scikit-image at {base} ships none of the sample photos; reinstall scikit-image.")
    return Collection("samples", base, _numbered(rows))


def load_collection(spec: str) -> Collection:
    """``tuxpaint``, ``samples`` or a path to a folder of class folders (``pascal`` is handled by training/)."""
    if spec == "tuxpaint":
        return tuxpaint_collection()
    if spec == "samples":
        return samples_collection()
    if Path(spec).expanduser().is_dir():
        return folder_collection(spec)
    raise AssetSourceError(f"Unknown collection {spec!r}: pass 'tuxpaint', 'samples', 'pascal' or a folder path.")
