"""The real-photo sets (evaluation, and validation for the tag choices): every photo is installed by CI, opens as a
real image and has usable tag words, and no photo is in both sets.

Fast (no model); the ``.rcc`` members are extracted into a temporary folder, so the shared cache is left alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from searchcore.quality.realphotos import REAL_PHOTOS, RealPhotoSet, read_rcc_member, real_photo_set
from searchcore.quality.validation_photos import VALIDATION_PHOTOS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory: pytest.TempPathFactory) -> RealPhotoSet:
    return real_photo_set(cache=tmp_path_factory.mktemp("realphotos"), entries=REAL_PHOTOS + VALIDATION_PHOTOS)


def test_every_entry_is_installed(photo_set: RealPhotoSet) -> None:
    # The packages come from requirements-dev.txt and the package loop in .ci/run; a miss names what to install.
    assert not photo_set.missing, "real photos missing:\n" + "\n".join(
        f"  {name}: {why}" for name, why in sorted(photo_set.missing.items())
    )
    assert len(photo_set) == len(REAL_PHOTOS) + len(VALIDATION_PHOTOS)


def test_no_photo_is_in_both_sets() -> None:
    # the tag rules are chosen on the validation set; a photo in both would be a figure measured on a choice's data
    def key(photo):
        return photo.path, photo.member

    assert not {key(p) for p in REAL_PHOTOS} & {key(p) for p in VALIDATION_PHOTOS}
    assert len(VALIDATION_PHOTOS) >= 40


def test_debian_packages_are_in_ci() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    loop = next(line for line in ci.splitlines() if line.startswith("for pkg in "))
    for package in {p.package for p in REAL_PHOTOS + VALIDATION_PHOTOS if p.system == "debian"}:
        assert package in loop.replace(";", " ").split(), f"{package} is not in .ci/run's package loop"


def test_pip_packages_are_required() -> None:
    required = (REPO / "requirements.txt").read_text() + (REPO / "requirements-dev.txt").read_text()
    for package in {p.package for p in REAL_PHOTOS + VALIDATION_PHOTOS if p.system == "pip"}:
        assert package in required, f"{package} is in neither requirements file"


def test_the_evaluation_set_alone_has_at_least_25_photos() -> None:
    # the published real-photo figure is measured on REAL_PHOTOS only (the validation photos choose the tag rules)
    assert len(REAL_PHOTOS) >= 25


def test_photos_open_as_images(photo_set: RealPhotoSet) -> None:
    for photo, path in photo_set.photos:
        with Image.open(path) as image:
            image.load()
            assert min(image.size) >= 64, f"{photo.name}: {image.size} is smaller than 64x64"


def test_entries_are_well_formed() -> None:
    names = [p.name for p in REAL_PHOTOS + VALIDATION_PHOTOS]
    assert len(names) == len(set(names)), "duplicate names"
    for photo in REAL_PHOTOS + VALIDATION_PHOTOS:
        assert photo.words, f"{photo.name} has no words"
        for word in photo.words:
            assert word.isascii() and word.isalpha() and word.islower(), f"{photo.name}: bad word {word!r}"
        assert len(set(photo.words)) == len(photo.words), f"{photo.name}: repeated word"
        assert photo.description and photo.licence, f"{photo.name}: no description or licence"


def test_nothing_from_the_training_collection(photo_set: RealPhotoSet) -> None:
    # tuxpaint-stamps-default is what the head is trained on; evaluating on it would measure memory, not meaning.
    for photo in REAL_PHOTOS + VALIDATION_PHOTOS:
        assert "tuxpaint" not in photo.package and not photo.path.startswith("/usr/share/tuxpaint"), photo.name
    for photo, path in photo_set.photos:
        assert not str(path.resolve()).startswith("/usr/share/tuxpaint"), photo.name


def test_rcc_reader_names_a_missing_member() -> None:
    archive = next((Path(p.path) for p in REAL_PHOTOS if p.member and Path(p.path).is_file()), None)
    if archive is None:
        pytest.skip("no .rcc archive installed")
    with pytest.raises(KeyError, match="not in"):
        read_rcc_member(archive, "gcompris/no/such/file.webp")
