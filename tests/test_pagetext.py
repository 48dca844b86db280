"""The page's text says what the served bundle does: each Text → Image mechanism with its share, or off where the
bundle's calibration turned it off (searchcore.serve.pagetext)."""

from __future__ import annotations

from types import SimpleNamespace

from searchcore.serve.pagetext import _text_image_text


def head(**mixes: float) -> SimpleNamespace:
    settings = {"conse_mix": 0.1, "unseen_conse_mix": 0.9, "neighbour_mix": 0.5, "word_mix": 0.3, "class_mix": 0.8,
                "unseen_class_mix": 0.6, "exemplar_mix": 0.4}
    return SimpleNamespace(**{**settings, **mixes})


def test_every_mechanism_on_is_described_with_its_share() -> None:
    text = _text_image_text(SimpleNamespace(head=head()))  # type: ignore[arg-type]
    assert "off in this bundle" not in text
    for share in ("0.1 for words the head was trained on", "0.9 for words it never saw", "(0.5 of it)",
                  "called so (share 0.3)", "(share 0.8)", "(share 0.6)", "nearest such photo (share 0.4)"):
        assert share in text, share


def test_a_mechanism_the_bundle_turned_off_is_said_to_be_off() -> None:
    text = _text_image_text(SimpleNamespace(head=head(word_mix=0.0, neighbour_mix=0.0)))  # type: ignore[arg-type]
    assert "called so: off in this bundle" in text and "look-alikes' words are off in this bundle" in text
    assert text.count("off in this bundle") == 2


def test_a_bundle_without_a_head_is_described_as_conse() -> None:
    text = _text_image_text(SimpleNamespace(head=None))  # type: ignore[arg-type]
    assert text.startswith("your words against every photo mapped into word space by ConSE")
