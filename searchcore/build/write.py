"""Write a bundle: photos, features, logits, the tag vocabulary, the indexes, then the manifest (last: all or nothing).

``training/`` calls these; searchcore never calls training. :func:`write_bundle` assembles a bundle from
features that were already extracted; :func:`rebuild_semantic` re-embeds the collection after a head is trained.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import bundle as B
from ..bundle import CONSE_TOP_T, WORD_VOCAB
from ..collection import Collection, Item
from ..index import VectorIndex, unit_rows
from ..models.backbone import Features
from ..models.clip import is_clip_spec
from ..models.conse import ConSE
from ..models.head import DeViSEHead
from ..models.propagation import NEIGHBOURS, collection_targets, neighbour_embedding, served_embedding
from ..models.tagging import build_tag_vocabulary
from ..models.words import WordVectors
from ..shards import Map, build_index, load_index, remove_saved, save_index

Log = Callable[[str], None]
#: the word-space photo indexes list a photo within this cosine distance of an earlier one as its near-copy, not as a
#: node of the graph (searchcore.copies): hnswlib's search cannot cross crowds of near-identical vectors, and the head
#: and ConSE place photos of one meaning that close together. (The image index does not list them yet: the build
#: queries it once per photo, for look-alikes and exemplars, and the expansion of copies is one query at a time.)
COPIES = 0.005
EmbedTags = Callable[[Sequence[str]], np.ndarray]  # tag phrases → unit vectors in the bundle's text space


def copy_images(collection: Collection, out: Path) -> None:
    for item in collection.items:
        target = out / B.IMAGES / item.path
        if not target.is_file() or target.stat().st_size != collection.path(item).stat().st_size:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(collection.path(item), target)


def _word_index(out: Path, name: str, words: WordVectors, limit: int, log: Log) -> VectorIndex:
    """Reuse an existing word index built from the same vectors and vocabulary size; otherwise build it."""
    base = out / B.INDEXES / name
    what = f"{words.source} vectors of the {limit} most frequent alphabetic words"
    if base.with_suffix(".json").is_file() and base.with_suffix(".hnsw").is_file():
        try:
            index = VectorIndex.load(base)
            if index.info.vectors == what and index.dim == words.dim:
                return index
        except Exception:
            pass
    log(f"building the {name} index over {limit} words")
    ids = words.alpha_ids(limit)
    index = VectorIndex.build(np.asarray(words.vectors[ids]), ids, what=what)
    index.save(base)
    return index


def write_bundle(
    out: str | Path,
    collection: Collection,
    feats: Features,
    backbone_spec: str,
    class_names: list[str],
    words: WordVectors,
    *,
    head: DeViSEHead | None = None,
    word_vocab: int = WORD_VOCAB,
    use_wordnet: bool = True,
    build_info: dict[str, Any] | None = None,
    log: Log = lambda _msg: None,
    shard_size: int | None = None,
    float16: bool = False,
    map_fn: Map = map,
    embed_tags: EmbedTags | None = None,
) -> Path:
    """Assemble a complete bundle in ``out`` from extracted features; returns ``out``.

    A CLIP backbone (``backbone_spec`` ``clip:…``) makes a CLIP bundle: the manifest records ``"space": "clip"``,
    and ``embed_tags`` (:func:`searchcore.models.clip.tag_embedder`) puts the tag phrases in CLIP's text space.

    ``shard_size`` splits the photo indexes (images, semantic, conse) into hnswlib shards of that many photos
    (:mod:`searchcore.shards`); None, or a size of at least the photo count, writes today's single indexes.
    ``float16`` stores features.npy and logits.npy in half precision (half the disk and download; the indexes
    are built from the full-precision values, and :func:`searchcore.bundle.open_bundle` widens on load).
    ``map_fn`` builds the shards of those indexes (default one after another;
    :func:`searchcore.build.pipeline.build_bundle` passes Ray tasks when it runs on Ray); the bundle is the same either
    way.
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    (root / B.MANIFEST).unlink(missing_ok=True)  # the bundle is incomplete until the new manifest lands
    items = [item._replace(id=i) for i, item in enumerate(collection.items)]
    copy_images(collection, root)
    B.write_items(root / B.ITEMS, items)
    from ..storage import save_npy

    stored = np.float16 if float16 else np.float32
    save_npy(root / B.FEATURES, feats.features.astype(stored, copy=False))
    save_npy(root / B.LOGITS, feats.logits.astype(stored, copy=False))
    t0 = time.perf_counter()
    what = f"{backbone_spec} penultimate features"
    sharded = shard_size is not None and shard_size < len(items)
    save_index(build_index(feats.features, shard_size=shard_size, what=what, map_fn=map_fn),
               root / B.INDEXES / "images")
    _word_index(root, "words", words, word_vocab, log)
    clip = is_clip_spec(backbone_spec)
    if clip and embed_tags is None:
        raise ValueError("a CLIP bundle needs embed_tags: CLIP's text tower puts its tag phrases in its space")
    tags = write_tags(root, items, words, class_names, use_wordnet, embed_tags if clip else None)
    log("tag vocabulary: " + ", ".join(f"{n} from {source}" for source, n in tags.sources.items()))
    fields = {
        "name": collection.name,
        "backbone": backbone_spec,
        "words": words.source,
        "feature_dim": int(feats.features.shape[1]),
        "word_dim": words.dim,
        "num_classes": int(feats.logits.shape[1]),
        "count": len(items),
        "labels": sorted({it.label for it in items}),
        "word_vocab": word_vocab,
        "tag_vocab": {"count": len(tags.phrases), "sources": tags.sources, "wordnet": use_wordnet},
        "conse_top_t": CONSE_TOP_T,
        "build": dict(build_info or {}),
    }
    # recorded only when chosen: a bundle built without them has exactly the manifest it had before they existed
    if clip:
        fields["space"] = "clip"
    if sharded:
        fields["shard_size"] = shard_size
    if float16:
        fields["float16"] = True
    fields["build"]["index_seconds"] = round(time.perf_counter() - t0, 3)
    return rebuild_semantic(root, words, class_names, head, fields=fields, map_fn=map_fn)


def write_tags(root: Path, items: list[Item], words: WordVectors, class_names: list[str], use_wordnet: bool = True,
               embed_tags: EmbedTags | None = None):
    """Build the tag vocabulary from the class names, WordNet, labels and captions; save it and its index.

    The phrases are chosen with the word vectors either way (things you can see, everyday words); their index
    holds ``embed_tags(phrases)`` when given (CLIP's text space), else their word vectors.
    """
    captions = [c for it in items for c in (it.captions or (it.caption,)) if c]
    tags = build_tag_vocabulary(words, class_names, [it.label for it in items], captions, use_wordnet=use_wordnet)
    if embed_tags is None:
        vectors, space = tags.vectors(words), f"{words.source} word space"
    else:
        vectors, space = unit_rows(np.asarray(embed_tags(tags.phrases), np.float32)), "CLIP text space"
    VectorIndex.build(vectors, what=f"{len(tags.phrases)} tag phrases in {space}").save(root / B.INDEXES / "tags")
    tags.save(root / B.TAGS)
    return tags


def _served_embedding(root: Path, features: np.ndarray, head: DeViSEHead, words: WordVectors,
                      fields: dict[str, Any]) -> np.ndarray:
    """The head's embedding of every photo, blended with its look-alikes' words (:mod:`searchcore.models.propagation`).

    The look-alikes come from the bundle's image index (approximate, like every search). A collection photo is
    its own nearest labelled photo, as the served head was trained on it too; the figures, measured on test photos
    whose words are held back, describe photos that are new to the collection.
    """
    mix = float(getattr(head, "neighbour_mix", 0.0))
    head_emb = head.embed(features)
    if mix <= 0.0 or len(features) < 2:
        return head_emb
    items = B.read_items(root / B.ITEMS)
    targets, has_target = collection_targets([it.label for it in items],
                                             [tuple(it.captions or (it.caption,)) for it in items], words,
                                             B.caption_weight(fields))
    found = load_index(root / B.INDEXES / "images").query(features, min(len(features), NEIGHBOURS))
    near = neighbour_embedding(found.ids, found.distances, targets, has_target)
    return served_embedding(head_emb, near, mix)


def write_postings(root: Path, features: np.ndarray, logits: np.ndarray, words: WordVectors,
                   head: DeViSEHead | None) -> dict[str, Any] | None:
    """The word signals' tables (:mod:`searchcore.postings`), for a bundle whose Text → Image has a head to mix them
    with: the class hierarchy's, the exemplars' (every photo's nearest photos by the image index, itself included:
    served, its own words count) and the word classifier's. None, and no file, for a bundle without a head."""
    from ..models.exemplars import served_exemplars
    from ..postings import FILE, PartTables, classifier_table, exemplar_table, hierarchy_table

    path = root / FILE
    if head is None:
        path.unlink(missing_ok=True)
        return None
    t0 = time.perf_counter()
    exemplars = served_exemplars(load_index(root / B.INDEXES / "images"), features, B.read_items(root / B.ITEMS),
                                 words)
    classifier = head.word_classifier
    tables = PartTables(hierarchy_table(logits), exemplar_table(exemplars),
                        classifier_table(classifier, features) if classifier is not None else None)
    return {**tables.save(path), "seconds": round(time.perf_counter() - t0, 3)}


def write_layout(root: Path, semantic: np.ndarray) -> tuple[dict[str, Any], float]:
    """The collection's map (:mod:`searchcore.layout`) from its semantic rows, named with the bundle's tag phrases:
    ``layout.npz``; what the manifest records of it (points, regions, method) and the seconds it took."""
    from .. import layout
    from ..models.tagging import TagVocabulary

    t0 = time.perf_counter()
    labels = [it.label for it in B.read_items(root / B.ITEMS)]
    found = layout.compute(semantic, labels, load_index(root / B.INDEXES / "tags"),
                           TagVocabulary.load(root / B.TAGS).phrases)
    layout.save(root / B.LAYOUT, found)
    return found.record(), time.perf_counter() - t0


def rebuild_semantic(
    root: str | Path,
    words: WordVectors,
    class_names: list[str],
    head: DeViSEHead | None,
    fields: dict[str, Any] | None = None,
    map_fn: Map = map,
) -> Path:
    """Re-embed the collection in word space (after training a head), rebuild that index, the map and the manifest.

    ``map_fn`` builds the shards of a sharded bundle's semantic and conse indexes (default one after another).
    """
    root = Path(root)
    if fields is None:
        fields = {k: v for k, v in B.verify(root, check_sums=False).items() if k not in ("format", "files")}
    (root / B.MANIFEST).unlink(missing_ok=True)
    features = np.load(root / B.FEATURES).astype(np.float32, copy=False)  # float16 bundles: compute in float32
    logits = np.load(root / B.LOGITS).astype(np.float32, copy=False)
    conse = ConSE.from_words(class_names, words, top_t=int(fields.get("conse_top_t", CONSE_TOP_T)))
    conse_emb = conse.embed(logits)
    clip = fields.get("space") == "clip"
    if clip:
        # CLIP's image embeddings already share a space with its text embeddings: Text → Image searches them
        head = None
        emb, kind, space = features, "clip", "CLIP space"
    else:
        emb, kind = (_served_embedding(root, features, head, words, fields), "head") if head is not None \
            else (conse_emb, "conse")
        space = f"{words.source} word space"
    shard_size = fields.get("shard_size")  # the photo indexes are sharded alike
    save_index(build_index(emb, shard_size=shard_size, what=f"images in {space} via {kind}", copies=COPIES,
                           map_fn=map_fn), root / B.INDEXES / "semantic")
    save_index(build_index(conse_emb, shard_size=shard_size, what=f"images in {words.source} word space via conse",
                           copies=COPIES, map_fn=map_fn), root / B.INDEXES / "conse")
    fields["semantic"] = "clip" if clip else "conse" if head is None else "head+conse per query"
    fields["head"] = head is not None
    # the rows Text → Image re-ranks its candidates with, memory-mapped when served (an index hands its vectors
    # out one call at a time, too slowly for hundreds of candidates per query)
    from ..storage import save_npy

    semantic = unit_rows(np.asarray(emb, np.float32))
    conse_rows = unit_rows(np.asarray(conse_emb, np.float32))
    save_npy(root / B.SEMANTIC, semantic)
    save_npy(root / B.CONSE, conse_rows)
    # Text → Image's two cosines in one index (searchcore.serve.engine reads it): a photo's [head row, ConSE row]
    # against the query [(1-m)·head side, m·ConSE side] gives (1-m)·cos_head + m·cos_ConSE for whatever mix m
    # the query's words ask for, so one search reads the mixed cosine best first
    joint = root / B.INDEXES / B.JOINT
    if head is not None:
        save_index(build_index(np.hstack([semantic, conse_rows]), shard_size=shard_size, copies=COPIES,
                               what=f"images in {space} via head and conse side by side", map_fn=map_fn), joint)
    else:
        remove_saved(joint)
    # the map is drawn from the rows just written; its time goes with the build's times (what the bundle is does
    # not depend on how fast it was built)
    fields["layout"], seconds = write_layout(root, semantic)
    fields["build"] = {**fields.get("build", {}), "layout_seconds": round(seconds, 3)}
    postings = write_postings(root, features, logits, words, head)
    fields.pop("postings", None)
    if postings is not None:
        fields["postings"] = postings
    B.write_manifest(root, fields)
    return root
