"""The Markdown the page shows: what is served and how each search works, its measured figures, a visitor's collection.

Pure text from the engine's facts (no Gradio here), so app.py stays the page's wiring and these read and test alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import shorten

if TYPE_CHECKING:
    from .engine import EngineInfo, SearchEngine
    from .personal import Limits

_METRIC_NAMES = {
    "text_image_p10": "Text → Image, precision@10 (label words)",
    "caption_word_p5": "Text → Image, precision@5 (caption words)",
    "zero_shot_text_image_p10": "Text → Image, precision@10 (held-out classes)",
    "tag_hit5": "Image → Tags, a right word in the top 5 (collection photos)",
    "zero_shot_tag_hit5": "Image → Tags, a right word in the top 5 (held-out classes)",
    "real_photo_tag_hit5": "Image → Tags, a right word in the top 5 (public real photos)",
    "features_image_image_p10": "Image → Image precision@10 on the raw CNN features",
    "eval_items": "test photos measured",
}
_SETTING_NAMES = {
    "conse_mix": "ConSE's weight in Text → Image for words the head was trained on",
    "unseen_conse_mix": "ConSE's weight in Text → Image for words it never saw",
    "seen_similarity": "a word this close to a trained word counts as seen",
    "neighbour_mix": "the share of a photo's 5 look-alikes' words in its Text → Image embedding",
    "word_mix": "the word classifier's share of a trained word's Text → Image score",
    "class_mix": "the ImageNet classes below a trained word (WordNet): their share of the rest",
    "unseen_class_mix": "the ImageNet classes below any other word: their share of its score",
    "exemplar_mix": "the cosine to the nearest collection photo known by the word: its share of the score",
    "tag_conse_mix": "ConSE's weight in the Image → Tags embedding",
    "class_min_prob": "the classifier names a photo from this probability",
    "unseen_class_min_prob": "the classifier names a photo unlike every collection photo from this one",
    "neighbour_distance": "collection photos this near lend their caption words",
}
_COLUMN_NAMES = {"conse": "ConSE", "head": "trained head", "served": "served"}

# ---- the page's fixed text ------------------------------------------------------------------------------------------
INTRO = ("# Semantic search: photos and words by meaning\n"
         "A CNN turns photos into feature vectors, GloVe turns words into vectors, and a small DeViSE head maps photos "
         "into the word space so that words can find photos and photos can be described in words. Pick a search "
         "below; every one is also an API endpoint (“Use via API” at the bottom of the page).")

#: The banner until the engine is ready. The first build's time: bench_e2e's cold start (docs/benchmarks.md, 5).
STARTING = ("**Preparing the search engine…** On the very first start the app builds its offline demo bundle "
            "(features of every photo, indexes and, given enough photos per label, a small trained head): a minute "
            "or two on two cores. Later starts take seconds. "
            "You can already type a search; it runs as soon as the engine is ready.")

#: Each search tab's opening line, by the tab's id (its API name).
TAB_INTROS = {
    "similar_images": "Find the photos of the collection that **look like** yours: nearest neighbours of the CNN's "
                      "penultimate features. Try a photo from the collection: its own label comes first.",
    "similar_images_by_class": "The same search, **biased toward one ImageNet class**: the features are re-weighted "
                               "by that class's row of the CNN's classifier, so what the class relies on counts most. "
                               "Type to filter the 1000 classes, or enter an index (284) or a name (Siamese cat).",
    "similar_words": "Words **nearest in meaning** to yours in GloVe's word space. Combine words with `+` and `-` "
                     "(`king - man + woman`) or weigh them (`2:cat dog`).",
    "tag_image": "**Describe a photo in words**: things you can see, from what the CNN recognises, from the captions "
                 "of similar collection photos and from the photo's place in word space. Any photo works, not only "
                 "the collection's: try the cat.",
    "search_images": "**Find photos with words**, even words no photo is captioned with. Several words are averaged "
                     "(`christmas tree`); `+`, `-` and weights work too (`fruit + red`, `2:bird + penguin`).",
    "search_images_by_photo_and_words": "**A photo and words in one query**: *this photo, but green*. The photo "
                                        "counts as one more word, so `+`, `-` and weights work as in Text → Image "
                                        "(`green`, `red - snow`, `2:yellow`). A photo alone finds photos of the "
                                        "same kind of thing; words alone search as Text → Image does.",
}


def _semantic_text(semantic: str) -> str:
    if semantic.startswith("head"):
        return ("a trained DeViSE head (image features → 2000 → word space), mixed per query with ConSE: words the "
                "head was trained on lean on the head, words it never saw on ConSE")
    return ("ConSE: no trained head, each photo is the average of the GloVe vectors of its top ImageNet classes, "
            "weighted by the classifier's probabilities")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "–" if value is None else str(value)


def _metrics_table(metrics: dict[str, Any]) -> str:
    columns = [name for name in _COLUMN_NAMES if isinstance(metrics.get(name), dict)]
    if not columns:
        return ""
    rows = [key for key in _METRIC_NAMES if any(metrics[name].get(key) is not None for name in columns)]
    header = " | ".join(_COLUMN_NAMES[name] for name in columns)
    split = metrics.get("split", "held-back")
    lines = [f"| measured on the {split} split | {header} |", "|---" * (len(columns) + 1) + "|"]
    for key in rows:
        cells = [_fmt(metrics[name].get(key)) for name in columns]
        lines.append(f"| {_METRIC_NAMES[key]} | " + " | ".join(cells) + " |")
    extras = [f"{_METRIC_NAMES[key]}: {_fmt(metrics[key])}" for key in _METRIC_NAMES if key in metrics]
    settings = [f"{text}: {_fmt(metrics['served'][key])}" for key, text in _SETTING_NAMES.items()
                if key in metrics.get("served", {})]
    if extras:
        lines += ["", "Also measured: " + "; ".join(extras) + "."]
    if settings:
        lines += ["", "Served settings, chosen on the validation split (the tag rules also on a second set of public "
                  "real photos, never the one measured here): " + "; ".join(settings) + "."]
    if split == "test":
        lines += ["", "The test photos were seen neither by training nor by any of those choices; the served head is "
                  "then trained again, the same way, on every photo."]
    return "\n".join(lines)


def _timings(manifest: dict[str, Any]) -> str:
    build, training = manifest.get("build") or {}, manifest.get("training") or {}
    facts = []
    if isinstance(build, dict) and build.get("extract_seconds") is not None:
        rate = f" ({build['images_per_second']} photos/s)" if build.get("images_per_second") else ""
        facts.append(f"feature extraction {float(build['extract_seconds']):.0f} s{rate}")
    if isinstance(build, dict) and build.get("index_seconds") is not None:
        facts.append(f"indexes {float(build['index_seconds']):.0f} s")
    if isinstance(training, dict) and training.get("train_seconds") is not None:
        epochs = f", {training['epochs_run']} epochs" if training.get("epochs_run") else ""
        if training.get("refit") and training.get("best_epoch"):
            refits = 2 if training.get("served_on_every_photo") else 1
            epochs += f" then {refits} × {training['best_epoch']} epochs of refits"
        facts.append(f"head training {float(training['train_seconds']):.0f} s{epochs}")
    return ("Build times on the machine that built the bundle: " + "; ".join(facts) + ".") if facts else ""


def _share(value: float, what: str) -> str:
    """One Text → Image mechanism as this bundle serves it: its share, or that its calibration turned it off."""
    return f"{what} (share {value:g})" if value > 0 else f"{what}: off in this bundle (its calibration chose 0)"


def _text_image_text(engine: SearchEngine) -> str:
    """How Text → Image ranks, mechanism by mechanism, with the shares this bundle's head serves (each may be 0)."""
    head = engine.head
    if head is None:
        return ("your words against every photo mapped into word space by ConSE (the average of the GloVe vectors of "
                "the photo's top ImageNet classes).")
    return " ".join([
        "your words against every photo mapped into word space, by the trained head and by ConSE, mixed per query:",
        f"ConSE weighs {head.conse_mix:g} for words the head was trained on and {head.unseen_conse_mix:g} for words "
        "it never saw.",
        ("Each photo's head embedding also leans on the labels and captions of its 5 nearest collection photos "
         f"({head.neighbour_mix:g} of it)." if head.neighbour_mix > 0
         else "The look-alikes' words are off in this bundle (its calibration chose 0)."),
        "Then, for a word the head was trained on, "
        + _share(head.word_mix, "its word classifier, how likely this photo is to be called so") + ";",
        "for a word WordNet places above ImageNet classes, the CNN's probability on the classes below it (`dogs`: the "
        "118 breeds; `fish`: goldfish, tench, sharks …): "
        + _share(head.class_mix, "a trained word's") + ", " + _share(head.unseen_class_mix, "any other word's") + ";",
        "and for a word some collection photo is labelled or captioned with, "
        + _share(head.exemplar_mix, "how close each photo is to the nearest such photo") + ".",
    ])


def describe(engine: SearchEngine, name: str) -> str:
    """The "How it works" panel for the served bundle (``name``: its Hub id or folder name, never the server's
    path): collection, models, measured figures."""
    info = engine.info
    labels = ", ".join(info.labels[:40]) + (f" … ({len(info.labels)} in all)" if len(info.labels) > 40 else "")
    parts = [
        "### What is being served",
        f"- **Collection:** `{info.collection}`, {info.count} photos in {len(info.labels)} labels: {labels}.",
        f"- **Image features:** `{info.backbone}`, {engine.backbone.feature_dim}-d penultimate activations, "
        f"cosine nearest neighbours in an hnswlib index.",
        f"- **Word vectors:** `{info.words}`, {info.word_dim}-d GloVe vectors.",
        f"- **Text ↔ image:** {_semantic_text(info.semantic)}.",
        f"- **Bundle:** `{name}`.",
        "",
        "### How each search works",
        "- **Image → Image:** the CNN's penultimate features of your photo; nearest photos by cosine distance.",
        "- **By ImageNet class:** the same features multiplied element-wise by one row of the CNN's ImageNet "
        "classifier, for your photo and for the collection, so the features that class relies on count most.",
        "- **Text → Text:** the GloVe vector of your words (`+`/`-` add and subtract, `2:cat` weighs); nearest words.",
        "- **Image → Tags:** what the CNN's ImageNet classifier is sure of (its class names and a broader word), "
        "the captions of collection photos very like yours, then the visual words (ImageNet classes, WordNet nouns "
        "for things you can see, the collection's labels and captions) nearest your photo in word space.",
        "- **Text → Image:** " + _text_image_text(engine),
        "- **Photo + words:** " + PHOTO_WORDS_TEXT,
    ]
    if info.space == "clip":  # one model embeds photos and words: no word-space mapping, no head
        parts = _clip_description(engine, name, labels)
    table = _metrics_table(info.metrics)
    if table:
        parts += ["", "### Measured", table]
    timings = _timings(engine.bundle.manifest)
    if timings:
        parts += ["", timings]
    parts += ["", "Distances are cosine distances (0: same direction, 1: unrelated). Benchmarks: `docs/benchmarks.md`."]
    return "\n".join(parts)


#: How Photo + words works, for a DeViSE bundle (the head's, or ConSE's, word space).
PHOTO_WORDS_TEXT = ("your photo placed in word space (where the head puts it; by ConSE for a photo unlike the "
                    "collection's) joins your words as one more word of weight 1, on the head's side and ConSE's, and "
                    "the query is ranked as Text → Image ranks words; the word signals speak only for the words, so "
                    "the photo's weight lowers their share.")


def _clip_description(engine: SearchEngine, name: str, labels: str) -> list[str]:
    """What is served and how each search works, for a CLIP bundle (searchcore.models.clip)."""
    info = engine.info
    return [
        "### What is being served: CLIP",
        f"- **Collection:** `{info.collection}`, {info.count} photos in {len(info.labels)} labels: {labels}.",
        f"- **Model:** `{info.backbone}`, CLIP (Radford et al. 2021): an image tower and a text tower trained "
        f"together on captioned photos, so photos and words meet in one {engine.backbone.feature_dim}-d space "
        "with no head to train (the DeViSE bundles map a CNN's features into GloVe's space instead).",
        f"- **Word vectors:** `{info.words}`, {info.word_dim}-d GloVe vectors, for Text → Text only.",
        f"- **Bundle:** `{name}`.",
        "",
        "### How each search works",
        "- **Image → Image:** CLIP's image embedding of your photo; nearest photos by cosine distance.",
        "- **By ImageNet class:** your photo's embedding pulled toward CLIP's text embedding of "
        "\"a photo of a {class}.\", then the nearest photos.",
        "- **Text → Text:** the GloVe vector of your words (`+`/`-` add and subtract, `2:cat` weighs); nearest words.",
        "- **Image → Tags:** the visual words (ImageNet classes, WordNet nouns for things you can see, the "
        "collection's labels and captions) whose CLIP text embedding (\"a photo of a {word}.\") is nearest your "
        "photo; a class CLIP is sure of, zero-shot, leads.",
        "- **Text → Image:** each of your words as \"a photo of a {word}.\" through CLIP's text tower, combined with "
        "`+`/`-` and weights, against every photo's image embedding.",
        "- **Photo + words:** your photo's CLIP image embedding added to the words' text embeddings (weight 1, the "
        "words keep theirs), against every photo's image embedding.",
    ]


def banner(info: EngineInfo, why: str) -> str:
    """The line above the tabs: what is served, and why this bundle (``why``)."""
    mode = ("trained DeViSE head with ConSE, per query" if info.semantic.startswith("head")
            else "CLIP, zero-shot (one model embeds photos and words)" if info.space == "clip"
            else "ConSE (no trained head)")
    return (f"**Serving `{info.collection}`:** {info.count} photos · image features `{info.backbone}` · word vectors "
            f"`{info.words}` · text ↔ image by {mode}.  \n<small>Why this bundle: {why}</small>")


# ---- a visitor's own photos (the Your photos tab) --------------------------------------------------------------------
def my_intro(limits: Limits) -> str:
    """The Your photos tab's opening paragraph, with the limits it is served with."""
    return ("**Search your own photos** with the served backbone, words and head. Drop photos, or a .zip of them "
            "(a .zip of class folders such as `cats/…`, `dogs/…` labels them, and with two or more labels a head is "
            "trained on them in seconds and measured against ConSE). Only you see them: they are kept for this "
            f"session only, at most {limits.max_photos} photos and {limits.max_bytes / 1e6:.0f} MB, and deleted when "
            f"you close the page or after {limits.idle_seconds / 60:.0f} idle minutes.")


def my_photos_account(summary: Any) -> str:
    """The tab's account of the collection after an upload or a clear (from the endpoint's summary)."""
    if not isinstance(summary, dict):
        return ""
    if "removed" in summary:
        return f"Removed {summary['removed']} photos. Your collection is empty."
    lines = [f"**{summary.get('added', 0)} photos added; your collection holds {summary.get('photos', 0)} "
             f"({summary.get('megabytes', 0)} MB of {summary.get('limits', {}).get('megabytes', '?')}, at most "
             f"{summary.get('limits', {}).get('photos', '?')} photos).**"]
    labels = summary.get("labels") or {}
    if labels:
        lines.append("Labels: " + ", ".join(f"{k} ({v})" for k, v in labels.items()) + ".")
    head = summary.get("head") or {}
    if head.get("trained"):
        p10 = head.get("text_image_p10", {})
        cells = " | ".join(_fmt(p10.get(name)) for name in ("conse", "head", "served"))
        lines += [f"A head was trained on your {head.get('photos')} labelled photos in {head.get('seconds')} s "
                  f"(best epoch {head.get('best_epoch')}). Text → Image precision@10 of each label's words over "
                  f"{head.get('test_photos')} held-back photos (few photos: a rough figure; served: the head and "
                  "its word classifier for your labels' words, ConSE for the others, and the ImageNet classes below "
                  "a word in WordNet for both; a label's word also counts how close a photo is to the nearest photo "
                  "of that label):",
                  "| ConSE | trained head | served |\n"
                  f"|---|---|---|\n| {cells} |"]
    elif head.get("why"):
        lines.append(str(head["why"]).capitalize() + ".")
    skipped = summary.get("skipped") or []
    if skipped:
        shown = "\n".join(f"- `{shorten(s['file'], 60)}`: {s['why']}" for s in skipped[:12])
        more = f"\n- … and {len(skipped) - 12} more" if len(skipped) > 12 else ""
        lines.append(f"Skipped {len(skipped)} files:\n{shown}{more}")
    return "\n\n".join(lines)
