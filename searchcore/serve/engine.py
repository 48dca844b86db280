"""SearchEngine: the five searches over one bundle, and :func:`load_engine`, the one factory that builds it.

    from searchcore import load_engine
    engine = load_engine("./assets/tuxpaint")          # or a Hub dataset repo id
    engine.search_images("cat + sofa - dog", k=8)

Images may be given as anything :func:`searchcore.images.load_image` reads, or as an ``int``: the id of an item of
the collection, whose stored features are used (no backbone pass).

A visitor's own photos (:class:`searchcore.serve.personal.PersonalCollection`) are added with
:meth:`SearchEngine.add_images` (the shared backbone, in batches), removed with :meth:`SearchEngine.remove_images`, and
searched by passing ``collection=`` to :meth:`SearchEngine.search_images` and :meth:`SearchEngine.similar_images`: the
same scoring code.

A query may also be a photo and words (:meth:`SearchEngine.search_images_by_photo_and_words`, "this photo, but
red"): the photo is one more term of a Text → Image query, answered by the same code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..bundle import JOINT, Bundle, is_clip, open_bundle, rebuild_hint
from ..errors import NO_PHOTOS_YET, BadArgumentError, BundleError, EmptyCollectionError, QueryError, shorten
from ..images import ImageInput
from ..index import Neighbours, exact_search, unit_rows
from ..inputs import check_class_text, check_k, quoted
from ..models.backbone import Backbone, Features
from ..models.backbones import load_backbone
from ..models.classnames import class_phrases
from ..models.clip import ClipBackbone
from ..models.conse import ConSE, conse_only, tag_embeddings
from ..models.headview import HeadView
from ..models.scoring import Shares, combine, query_mix, query_parts
from ..models.tagging import ItemTags, TagRule, classifier_tags, neighbour_tags, rank_tags
from ..models.words import Term, WordVectors, load_word_vectors, parse_query
from ..postings import list_sources, part_weights, query_rows, table_parts
from ..topk import Source, top_k

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..models.headview import Head
    from .personal import CollectionStore, Limits, PersonalCollection
    from .uploads import Candidate, Skipped

#: Image → Image by class: the candidates taken from the image index (and re-ranked exactly); a bundle with no more
#: photos than this is scored whole
BY_CLASS_POOL = 1024
#: Text → Image: the deepest an hnswlib index is read for candidates. Past it the index's last cosine still bounds
#: every photo it did not give, and the word lists, cheap to read, go on alone.
INDEX_DEPTH = 1024
NEIGHBOURS = 5  # collection photos whose captions may vote for an image's tags
EngineImage = ImageInput | int
#: A photo-and-words query's photo counts as one word of weight 1 (the words keep their own weights and signs).
PHOTO_WEIGHT = 1.0
#: The photo's place among the query's terms: a "word" no vocabulary or posting table can hold (a query's words
#: never contain a NUL), so the word signals find no list for it, yet its weight counts in the query's total and
#: so lowers the words' shares, as one more word of the query would.
PHOTO_TERM = Term(PHOTO_WEIGHT, "\0photo")


class Hit(NamedTuple):
    """One image found: the item, its label and caption, its distance, and the photo's path.

    ``distance`` is 1 − the search's own score, smaller is nearer: the cosine distance for Image → Image, the
    distance of the re-weighted features by class, and for Text → Image 1 − the mixed score of
    :func:`searchcore.models.scoring.combine` (the cosines and the word signals). Compare it within one answer only."""

    id: int
    label: str
    caption: str
    distance: float
    path: Path


class QueryPhoto(NamedTuple):
    """The photo of a photo-and-words query, as Text → Image's spaces place it (:meth:`SearchEngine.query_photo`).

    ``features``/``logits``: the backbone's (a collection item's: stored). ``conse``: its ConSE embedding (CLIP: its
    image embedding). ``head``: its place among the semantic index's rows: a collection item's stored row, else the
    head's embedding (None without a head; for a photo unlike the collection its ConSE embedding, the rule of Image
    → Tags). ``unseen``: unlike every collection photo (:meth:`SearchEngine._unseen`)."""

    features: np.ndarray
    logits: np.ndarray
    conse: np.ndarray
    head: np.ndarray | None
    unseen: bool


class _Query(NamedTuple):
    """A Text → Image query as the score reads it: the head side's and ConSE's unit vectors, ConSE's share, and the
    terms the word signals read (a photo among them as :data:`PHOTO_TERM`)."""

    head: np.ndarray | None
    conse: np.ndarray
    mix: float
    terms: list[Term]

    def joint(self) -> np.ndarray:
        """The query in the joint index's space: ``[(1-mix)·head side, mix·ConSE side]``, whose inner product with a
        photo's ``[head row, ConSE row]`` is the mixed cosine."""
        assert self.head is not None  # a joint index exists only beside a head
        return np.concatenate([(1.0 - self.mix) * self.head, self.mix * self.conse])


class WordHit(NamedTuple):
    word: str
    distance: float


class Added(NamedTuple):
    """What :meth:`SearchEngine.add_images` did: photos added, files skipped and why, the collection's state."""

    added: int
    skipped: list[Skipped]
    summary: dict[str, Any]


@dataclass
class EngineInfo:
    collection: str
    count: int
    labels: list[str]
    backbone: str
    words: str
    word_dim: int
    semantic: str  # what Text → Image searches: "head+conse per query", "conse" (no head) or "clip"
    metrics: dict[str, Any]
    root: Path
    space: str = "devise"  # "clip": a CLIP bundle (searchcore.models.clip), where text and photos meet in CLIP's space


class SearchEngine:
    """All five searches. Build it with :func:`load_engine`; it is read-only and safe to share between threads."""

    def __init__(self, bundle: Bundle, backbone: Backbone, words: WordVectors, head: Head | None = None):
        manifest, root = bundle.manifest, bundle.root
        if is_clip(manifest) != isinstance(backbone, ClipBackbone):
            raise BundleError(f"is {'a' if is_clip(manifest) else 'not a'} CLIP bundle ({manifest['backbone']}), but "
                              f"the backbone {backbone.spec} is {'not ' if is_clip(manifest) else ''}a CLIP.", root,
                              rebuild_hint(root))
        if backbone.feature_dim != int(manifest["feature_dim"]):
            raise BundleError(f"was built with {manifest['feature_dim']}-d features ({manifest['backbone']}) but the "
                              f"backbone {backbone.spec} gives {backbone.feature_dim}-d.", root, rebuild_hint(root))
        if words.dim != int(manifest["word_dim"]) or words.source != manifest["words"]:
            raise BundleError(f"was built with word vectors {manifest['words']!r} ({manifest['word_dim']}-d), not "
                              f"{words.source!r} ({words.dim}-d).", root, rebuild_hint(root))
        if head is not None and (head.in_dim != backbone.feature_dim or head.out_dim != words.dim):
            raise BundleError(f"head maps {head.in_dim}→{head.out_dim} but the bundle needs "
                              f"{backbone.feature_dim}→{words.dim}.", root / "head",
                              "Retrain it with: python -m training.train_devise --bundle " + str(root))
        self.bundle, self.backbone, self.words, self.head = bundle, backbone, words, head
        # a CLIP bundle: Text → Image, Image → Tags and the by-class search use CLIP's text tower
        # (searchcore.models.clip)
        self.clip = backbone if isinstance(backbone, ClipBackbone) else None
        self.conse = ConSE.from_words(backbone.class_names, words, top_t=int(manifest.get("conse_top_t", 10)))
        # the tags each collection photo lends its look-alikes, read when a photo first votes (not at load)
        items = bundle.items
        self._item_tags = ItemTags(bundle.tags, words, lambda i: (items[i].label, items[i].captions or
                                                                  (items[i].caption,)), len(items))
        # which classifier classes name a photo, how near a collection photo must be to lend its caption words:
        # chosen on validation items when the head was trained
        self.tag_rule = TagRule.from_manifest(manifest)

    # ---- facts about the engine -------------------------------------------------------------------------------
    @cached_property
    def _class_weights(self) -> np.ndarray:
        """The backbone's classifier rows, one per ImageNet class: read on the first by-class search (reading the
        offline backbone's needs torch, which a search by words does not)."""
        return self.backbone.classifier_weights()

    @property
    def info(self) -> EngineInfo:
        m = self.bundle.manifest
        return EngineInfo(self.bundle.name, int(m["count"]), list(m.get("labels", [])), m["backbone"], m["words"],
                          int(m["word_dim"]), m.get("semantic", "conse"), dict(m.get("metrics", {})), self.bundle.root,
                          "clip" if self.clip is not None else "devise")

    @property
    def class_names(self) -> list[str]:
        return self.backbone.class_names

    def resolve_class(self, value: int | str) -> int:
        """An ImageNet class from its index (0–999, also as text) or its name ("Siamese cat"), case-insensitive."""
        n = len(self.class_names)
        if isinstance(value, str):
            text = check_class_text(value.strip())
            match = re.match(r"^(\d+)\b", text)  # "284", "284: Siamese cat, Siamese"
            if match:
                value = int(match.group(1))
            else:
                return self._class_by_name(text)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n:
            raise BadArgumentError(f"The ImageNet class must be an index from 0 to {n - 1} or a class name; "
                                   f"got {quoted(value)}.")
        return int(value)

    def _class_by_name(self, text: str) -> int:
        key = text.lower()
        if not key:
            raise BadArgumentError("Pick an ImageNet class: type a name such as 'Siamese cat' or an index like 284.")
        exact = [i for i, d in enumerate(self.class_names) if key in (" ".join(p) for p in class_phrases(d))
                 or key == d.lower()]
        if exact:
            return exact[0]
        partial = [i for i, d in enumerate(self.class_names) if key in d.lower()]
        if len(partial) == 1:
            return partial[0]
        if partial:
            shown = "; ".join(f"{i}: {self.class_names[i]}" for i in partial[:5])
            raise BadArgumentError(f"'{shorten(text)}' matches {len(partial)} ImageNet classes ({shown} …); be more "
                                   "specific.")
        raise BadArgumentError(f"No ImageNet class is called '{shorten(text)}'; type another name or an index from 0 "
                               f"to {len(self.class_names) - 1}.")

    # ---- building blocks ---------------------------------------------------------------------------------------
    def features(self, image: EngineImage) -> Features:
        """Backbone features of one image, or the stored features of a collection item (``int``)."""
        if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
            if not 0 <= image < len(self.bundle.items):
                raise BadArgumentError(f"There is no item {image} in the collection (0–{len(self.bundle.items) - 1}).")
            return Features(self.bundle.features[image : image + 1], self.bundle.logits[image : image + 1])
        return self.backbone.extract_one(image)

    def embed_image(self, image: EngineImage) -> tuple[np.ndarray, Features]:
        """The image in word space as Image→Tags sees it, and its features.

        The head blended with ConSE (``tag_conse_mix``), or ConSE alone when there is no head or the photo is
        farther from every collection photo than ``ood_distance``: unlike anything the head learnt from.
        """
        feats = self.features(image)
        return self._tag_embedding(image, feats, self.bundle.indexes["images"].query(feats.features, 1)), feats

    def _tag_embedding(self, image: EngineImage, feats: Features, near: Neighbours) -> np.ndarray:
        """:func:`tag_embeddings` of one image, ``near`` its nearest collection photos (a collection item: none)."""
        if self.clip is not None:  # CLIP's image embedding is already in the space of the tag phrases
            return feats.features[0]
        return tag_embeddings(feats.features, feats.logits, self.conse, self.head, _nearest(image, near))[0]

    def _unseen(self, image: EngineImage, near: Neighbours) -> bool:
        """Is the image embedded by ConSE alone (:func:`conse_only`), so served by the unseen-photo rule?"""
        return self.clip is None and bool(conse_only(self.head, _nearest(image, near), 1)[0])

    def _hits(self, ids: np.ndarray, dists: np.ndarray) -> list[Hit]:
        items = self.bundle.items
        return [Hit(int(i), items[i].label, items[i].caption, float(d), self.bundle.image_path(items[i]))
                for i, d in zip(ids, dists)]

    # ---- the five searches ---------------------------------------------------------------------------------------
    def similar_images(self, image: EngineImage, k: int = 10, collection: PersonalCollection | None = None
                       ) -> list[Hit]:
        """Image → Image: cosine neighbours of the backbone's penultimate features (in ``collection`` if given)."""
        k = check_k(k)
        if collection is not None:
            with collection.lock:
                _nonempty(collection)
                found = exact_search(collection.features, self.features(image).features, min(k, len(collection)))
                return _own_hits(collection, found.ids[0], found.distances[0])
        found = self.bundle.indexes["images"].query(self.features(image).features, k)
        return self._hits(found.ids[0], found.distances[0])

    def similar_images_by_class(self, image: EngineImage, imagenet_class: int | str, k: int = 10) -> list[Hit]:
        """Image → Image with query and collection features re-weighted by one ImageNet class's classifier row."""
        k = check_k(k)
        cls = self.resolve_class(imagenet_class)
        if self.clip is not None:  # the photo pulled toward the class's text embedding (see clip.CLASS_BIAS)
            found = self.bundle.indexes["images"].query(self.clip.class_query(self.features(image).features, cls), k)
            return self._hits(found.ids[0], found.distances[0])
        query = self.features(image).features[0]
        weights = self._class_weights[cls]
        # Candidates from the image index, then the exact re-weighted cosine over them only. The re-weighted
        # vectors' dot product is x·(q⊙w²): the index is asked with q⊙w² (and with q itself, for the photos that
        # look most alike anyway); a bundle small enough is scored whole.
        images = self.bundle.indexes["images"]
        pool = min(len(images), max(BY_CLASS_POOL, 20 * k))
        if pool >= len(images):
            ids = np.arange(len(images), dtype=np.int64)
        else:
            ids = np.unique(np.concatenate([images.query(query * weights**2, pool).ids[0],
                                            images.query(query, pool).ids[0]]).astype(np.int64))
        found = exact_search(unit_rows(np.asarray(self.bundle.features[ids]) * weights), query * weights,
                             min(k, len(ids)))
        return self._hits(ids[found.ids[0]], found.distances[0])

    def similar_words(self, query: str, k: int = 10) -> list[WordHit]:
        """Text → Text: nearest words to the query vector; the query's own words are left out."""
        k = check_k(k)
        terms = parse_query(query)
        vector = self.words.combine(terms)
        own = {self.words.id(t.word) for t in terms}
        found = self.bundle.indexes["words"].query(vector, k + len(own))
        hits = [WordHit(self.words.words[i], float(d))
                for i, d in zip(found.ids[0], found.distances[0]) if i not in own]
        return hits[:k]

    def tag_image(self, image: EngineImage, k: int = 10) -> list[WordHit]:
        """Image → Tags, in three tiers (:func:`searchcore.models.tagging.rank_tags`): a confident ImageNet class's
        words lead, then the words the nearest collection photos vote for, then the tag phrases nearest the image in
        word space. ``distance`` is each tag's cosine distance to the image's embedding, whatever tier placed it."""
        k = check_k(k)
        feats = self.features(image)
        near = self.bundle.indexes["images"].query(feats.features, NEIGHBOURS)  # the unseen-photo test and the votes
        emb = self._tag_embedding(image, feats, near)
        index, tags = self.bundle.indexes["tags"], self.bundle.tags

        def search(query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            found = index.query(query, n)
            return found.ids[0], found.distances[0]

        voted = neighbour_tags(near.ids[0], near.distances[0], self._item_tags, self.tag_rule.neighbour_distance)
        lead = classifier_tags(feats.logits[0], tags, self.tag_rule.min_prob(self._unseen(image, near)))
        ranked = rank_tags(emb, search, index.get, tags, k, lead, voted)
        return [WordHit(tags.phrases[i], d) for i, d in ranked]

    def search_images(self, query: str, k: int = 10, collection: PersonalCollection | None = None) -> list[Hit]:
        """Text → Image: the query's cosine to each image's head and ConSE embeddings, mixed by trust in the words.

        Words the head was trained on lean on the head, words it never saw on ConSE (:func:`query_mix`). Both
        indexes give candidates; the mixed score ranks them exactly. Over ``collection`` (a visitor's photos) every
        photo is scored, with its own trained head if it has one, else the served head (ConSE where it does not fit).
        """
        k = check_k(k)
        return self._search(parse_query(query), k, None, collection)

    def search_images_by_photo_and_words(self, image: EngineImage | None, query: str | None = "", k: int = 10,
                                         collection: PersonalCollection | None = None) -> list[Hit]:
        """Text → Image with a photo among the words: "this photo, but red" (``query="red"``), "− snow + beach".

        The photo is one more term of the query, of weight 1 (the words keep their own weights and signs), placed in
        word space by :meth:`query_photo` and combined the way words combine; the query is then answered as
        :meth:`search_images` answers words, from the same indexes with the same score. A photo with no words is
        allowed (Image → Image in word space: photos of the same kind of thing rather than of the same look);
        words with no photo (``image=None``) are plain Text → Image. Neither raises :class:`QueryError`.
        """
        k = check_k(k)
        if query is not None and not isinstance(query, str):
            raise QueryError(f"The words must be text, e.g. 'green' or 'beach - snow'; got {type(query).__name__}.")
        words = bool(query and query.strip())
        if image is None and not words:
            raise QueryError("Give a photo, some words, or both: e.g. a photo of a red apple and 'green', or a "
                             "photo and 'beach - snow'.")
        terms = parse_query(query) if words else []  # (query is a str here) the words first: no backbone pass
        photo = self.query_photo(image) if image is not None else None
        return self._search(terms, k, photo, collection)

    def query_photo(self, image: EngineImage) -> QueryPhoto:
        """A query's photo in Text → Image's spaces: the head's and ConSE's (CLIP's image embedding for both)."""
        feats = self.features(image)
        if self.clip is not None:  # a CLIP bundle's semantic rows are the photos' image embeddings
            return QueryPhoto(feats.features[0], feats.logits[0], feats.features[0], feats.features[0], False)
        if isinstance(image, (int, np.integer)):  # a collection photo: where the bundle placed it
            ids = np.asarray([int(image)])
            return QueryPhoto(feats.features[0], feats.logits[0], self.bundle.vectors("conse", ids)[0],
                              self.bundle.vectors("semantic", ids)[0] if self.head is not None else None, False)
        conse = self.conse.embed(feats.logits)[0]
        unseen = self._unseen(image, self.bundle.indexes["images"].query(feats.features, 1))
        head = None if self.head is None else conse if unseen else self.head.embed(feats.features)[0]
        return QueryPhoto(feats.features[0], feats.logits[0], conse, head, unseen)

    def _query(self, terms: list[Term], photo: QueryPhoto | None, head: Head | None) -> _Query:
        """The query's vectors and ConSE's share, as ``head`` (the served one, or a visitor's own) reads them.

        The words alone: the head's reading of them (:meth:`WordReading.head_query`), their mean unit vector
        (ConSE's side) and :func:`query_mix`. A photo is one more term: its unit vectors join the words' weighted
        sums on each side, and it votes for ConSE's share as a word does.
        """
        pairs = [(t.weight, t.word) for t in terms]
        if photo is None:
            return _Query(head.head_query(pairs, self.words) if head is not None else None, self.words.combine(terms),
                          query_mix(pairs, head, self.words), terms)
        conse = _unit_sum([t.weight * self.words.unit(t.word) for t in terms] + [PHOTO_WEIGHT * photo.conse])
        if head is None:
            return _Query(None, conse, 1.0, [*terms, PHOTO_TERM])
        # each word as head_query reads it alone: its vector, or an unseen word's nearest seen words
        said = [t.weight * head.head_query([(1.0, t.word)], self.words) for t in terms]
        placed = photo.head if head is self.head and photo.head is not None else head.embed(photo.features[None])[0]
        # ConSE's share: the trained share for a photo like the collection's, the unseen one for a photo unlike all
        # of them. The head's place for such a photo is guesswork, as it is for a word it never saw: query_mix
        # leans on ConSE for those words for the same reason (and query_photo already placed the photo by ConSE).
        photo_mix = head.unseen_conse_mix if photo.unseen else head.conse_mix
        total = sum(abs(t.weight) for t in terms)
        mix = (query_mix(pairs, head, self.words) * total + PHOTO_WEIGHT * photo_mix) / (total + PHOTO_WEIGHT)
        return _Query(_unit_sum([*said, PHOTO_WEIGHT * placed]), conse, float(mix), [*terms, PHOTO_TERM])

    def _search(self, terms: list[Term], k: int, photo: QueryPhoto | None = None,
                collection: PersonalCollection | None = None) -> list[Hit]:
        """Text → Image for ``terms`` (and ``photo``): every search of photos by words answers here."""
        if collection is not None:
            with collection.lock:
                _nonempty(collection)
                scores = self._own_text_scores(terms, collection, photo)
                order = np.argsort(-scores, kind="stable")[:k]
                return _own_hits(collection, order, np.maximum(1.0 - scores[order], 0.0))
        semantic = self.bundle.indexes["semantic"]
        if self.clip is not None:  # the query's CLIP text embedding against the photos' image embeddings
            found = semantic.query(self._clip_query(terms, photo), k)
            return self._hits(found.ids[0], found.distances[0])
        query = self._query(terms, photo, self.head)
        if self.head is None:
            found = semantic.query(query.conse, k)
            return self._hits(found.ids[0], found.distances[0])
        head, tables, terms = self.head, self.bundle.tables, query.terms
        rows = query_rows(tables, head, terms)
        shares = Shares.of(head)
        weights = part_weights(table_parts(tables, head, terms, np.zeros(0, np.int64), rows), head)
        assert query.head is not None  # a head reads every query

        def nearest(index: Any, vector: np.ndarray, scale: float, weight: float,
                    value: Callable[[np.ndarray], np.ndarray]) -> Source:
            """An index read best first: its cosines times ``scale`` are the list's values (``value`` gives any
            photo's without the index)."""
            read = [np.zeros(0, np.int64), np.zeros(0, np.float32)]

            def fetch(depth: int) -> tuple[np.ndarray, np.ndarray]:
                depth = min(depth, INDEX_DEPTH)
                if depth > len(read[0]):  # the first search as deep as asked, a second one as deep as it goes:
                    # searches of 128, 256 and 512 in turn cost about as much as one of 1,024
                    found = index.query(vector, depth if not len(read[0]) else INDEX_DEPTH)
                    read[:] = found.ids[0], scale * (1.0 - found.distances[0])
                return read[0][:depth], read[1][:depth]

            return Source(weight, fetch, ends=False, value=value, most=1.0, dear=True)

        def head_cosine(ids: np.ndarray) -> np.ndarray:
            return self.bundle.vectors("semantic", ids) @ query.head

        def conse_cosine(ids: np.ndarray) -> np.ndarray:
            return self.bundle.vectors("conse", ids) @ query.conse

        def score(ids: np.ndarray) -> np.ndarray:  # the served score (scoring.combine), of these photos only
            return combine(head_cosine(ids), conse_cosine(ids), query.mix, table_parts(tables, head, terms, ids, rows),
                           shares)

        # the mixed cosine and the words' lists, read best first only as deep as the k-th best score needs: one
        # index of both sides (searchcore.build.write.rebuild_semantic), or in a bundle built before it, each side's
        mix, joint = query.mix, self.bundle.indexes.get(JOINT)
        if joint is not None:
            # a photo's row there is [head row, ConSE row] / √2, so the query [(1-m)·head side, m·ConSE side]
            # has the cosine ((1-m)·cos_head + m·cos_ConSE) / (√2·|query|) with every photo: one search reads the
            # mixed cosine best first, and its last value bounds every photo not read (two indexes read apart
            # bound it only by the sum of two different photos' cosines)
            vector = query.joint()
            scale = float(np.sqrt(2.0) * np.linalg.norm(vector)) if joint.info.space == "cosine" else 1.0
            cosines = [nearest(joint, vector, scale, weights["cosine"],
                               lambda ids: (1.0 - mix) * head_cosine(ids) + mix * conse_cosine(ids))]
        else:
            cosines = [nearest(semantic, query.head, 1.0, weights["cosine"] * (1.0 - mix), head_cosine),
                       nearest(self.bundle.indexes["conse"], query.conse, 1.0, weights["cosine"] * mix, conse_cosine)]
        sources = [*cosines, *list_sources(tables, head, terms, rows, weights)]
        found = top_k(sources, score, k, len(semantic))
        return self._hits(found.ids, np.maximum(1.0 - found.scores, 0.0))

    def _clip_query(self, terms: list[Term], photo: QueryPhoto | None) -> np.ndarray:
        """A CLIP bundle's query: the words' weighted prompted text embeddings, and the photo's image embedding."""
        assert self.clip is not None
        if photo is None:
            return self.clip.embed_query(terms)
        said = list(np.asarray([t.weight for t in terms], np.float32)[:, None] * self.clip.embed_phrases(
            [t.word for t in terms])) if terms else []
        return _unit_sum([*said, PHOTO_WEIGHT * photo.conse])

    def _own_text_scores(self, terms: list[Term], collection: PersonalCollection,
                         photo: QueryPhoto | None = None) -> np.ndarray:
        """Each of a visitor's photos scored for the query, by the rule the bundle's photos are scored with."""
        if self.clip is not None:  # the photos' semantic rows are their CLIP image embeddings (_embed_collection)
            return collection.semantic @ self._clip_query(terms, photo)
        own = collection.own is not None and collection.own.head is not None
        head = collection.own.head if own and collection.own is not None else self.head
        query = self._query(terms, photo, head)
        if head is None:
            return collection.conse @ query.conse
        assert query.head is not None
        parts = query_parts(head, collection.features, collection.logits, query.terms,
                            exemplars=collection.exemplars if own else None)
        return combine(collection.semantic @ query.head, collection.conse @ query.conse, query.mix, parts,
                       Shares.of(head))

    # ---- a visitor's own photos (searchcore.serve.personal) ----------------------------------------------------------
    def collection_store(self, limits: Limits | None = None, root: Path | None = None) -> CollectionStore:
        """A store of private collections shaped for this engine's vectors (limits default to the environment's;
        ``root``, the folder the photos are kept in, to a new temporary folder)."""
        from .personal import CollectionStore, Limits

        return CollectionStore(self.backbone.feature_dim, self.backbone.num_classes, self.words.dim,
                               limits or Limits.from_env(), **({"root": root} if root is not None else {}))

    def add_images(self, collection: PersonalCollection, photos: Sequence[Candidate],
                   progress: Callable[[int, int], None] | None = None, train: bool = True) -> Added:
        """Add photos (name, label, bytes) to ``collection`` with the shared backbone, in batches.

        A photo that is not readable, or does not fit the collection's limits, is skipped with the reason; the
        others are added. With ``train``, a head is trained on the labels when they allow one
        (:func:`searchcore.serve.personal.train_own_head`).
        """
        from .personal import PersonalItem, train_own_head
        from .uploads import Skipped

        with collection.lock:
            slots, room = collection.room
            taken, skipped = [], []
            for photo in photos:
                if len(taken) >= slots:
                    skipped.append(Skipped(photo.name, f"refused: your collection holds at most "
                                                       f"{collection.max_photos} photos; clear it or remove some."))
                elif len(photo.data) > room:
                    skipped.append(Skipped(photo.name, f"refused: your photos may take {collection.max_bytes / 1e6:.0f}"
                                                       " MB in all; clear them or upload smaller ones."))
                else:
                    taken.append(photo)
                    room -= len(photo.data)
            feats, errors = self.backbone.extract_readable([p.data for p in taken], progress=progress)
            readable = [p for p, err in zip(taken, errors) if err is None]
            skipped += [Skipped(p.name, _unreadable(err)) for p, err in zip(taken, errors) if err is not None]
            if readable:
                items = [PersonalItem(p.name, p.label, collection.store(p.name, p.data)) for p in readable]
                nearest = self.bundle.indexes["images"].query(feats.features, 1).distances[:, 0]
                collection.append(items, feats.features, feats.logits, self.conse.embed(feats.logits), nearest,
                                  sum(len(p.data) for p in readable))
                if train and self.clip is None:  # CLIP's photos and words already share a space: no head
                    collection.own = train_own_head(collection, self.words, self.backbone.spec)
                self._embed_collection(collection)
            return Added(len(readable), skipped, collection.summary())

    def remove_images(self, collection: PersonalCollection, ids: Sequence[int] | None = None) -> int:
        """Remove photos (their rows in ``collection``; all of them when ``ids`` is None); returns how many."""
        from .personal import train_own_head

        with collection.lock:
            removed = collection.clear() if ids is None else collection.remove(ids)
            if removed and len(collection):
                if collection.own is not None:  # it learnt from the removed photos too
                    collection.own = train_own_head(collection, self.words, self.backbone.spec)
                self._embed_collection(collection)
            return removed

    def _embed_collection(self, collection: PersonalCollection) -> None:
        """The collection's photos in word space for Text → Image: its own head's embedding when it has one; else
        the served head's, and ConSE for photos farther from the served photos than the head's ``ood_distance``."""
        from .personal import collection_exemplars

        own = collection.own.head if collection.own is not None else None
        collection.exemplars = None
        if self.clip is not None:  # Text → Image compares CLIP text embeddings with the image embeddings
            collection.semantic = collection.features
        elif own is not None:
            collection.semantic = own.embed(collection.features)
            collection.exemplars = collection_exemplars(collection, self.words)
        elif self.head is not None:
            emb = self.head.embed(collection.features)
            if self.head.ood_distance is not None:
                emb = np.where((collection.nearest > self.head.ood_distance)[:, None], collection.conse, emb)
            collection.semantic = emb
        else:
            collection.semantic = collection.conse


def _unit_sum(vectors: list[np.ndarray]) -> np.ndarray:
    """A query's weighted term vectors summed and made unit, as :meth:`WordVectors.combine` sums words."""
    total = np.sum(vectors, axis=0, dtype=np.float32)
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise QueryError("The photo and the words cancel each other out; change the signs or weights.")
    return (total / norm).astype(np.float32)


def _nearest(image: EngineImage, near: Neighbours) -> np.ndarray | None:
    """The distance to the nearest collection photo, as :func:`tag_embeddings` takes it (a collection item: None)."""
    return None if isinstance(image, (int, np.integer)) else near.distances[:, 0]


def _nonempty(collection: PersonalCollection) -> None:
    if not len(collection):
        raise EmptyCollectionError(NO_PHOTOS_YET)


def _unreadable(error: str) -> str:
    """searchcore.images' message about bytes it could not read, as said of a named file of an upload."""
    error = re.sub(r" <_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", error)
    return "skipped: " + error.replace("Could not read the uploaded bytes as an image", "not a readable photo")


def _own_hits(collection: PersonalCollection, ids: np.ndarray, dists: np.ndarray) -> list[Hit]:
    """Hits of a visitor's photos: labelled by their class folder, or by the file name when they have none."""
    items = collection.items
    return [Hit(int(i), items[i].label or items[i].name, items[i].name if items[i].label else "", float(d),
                items[i].path) for i, d in zip(ids, dists)]


def load_engine(source: str | Path, *, check_sums: bool = True, backbone: Backbone | None = None,
                words: WordVectors | None = None) -> SearchEngine:
    """Build the engine for a bundle: a local folder or a Hub dataset repo id.

    The backbone, word vectors and head are the ones the bundle's manifest names; pass ``backbone``/``words`` only
    to reuse objects already loaded (they are checked against the manifest).
    """
    bundle = open_bundle(source, check_sums=check_sums)
    manifest = bundle.manifest
    backbone = backbone or load_backbone(manifest["backbone"])
    words = words or load_word_vectors(manifest["words"])
    head = None
    if bundle.head_dir is not None:
        try:
            head = HeadView.load(bundle.head_dir)
        except Exception as exc:
            raise BundleError(f"the trained head cannot be loaded ({type(exc).__name__}: {exc}).", bundle.head_dir,
                              "Retrain it with: python -m training.train_devise --bundle " + str(bundle.root)) from exc
        if head.backbone and head.backbone != manifest["backbone"]:
            raise BundleError(f"the head was trained on {head.backbone} features, the bundle has "
                              f"{manifest['backbone']}.", bundle.head_dir / "config.json",
                              "Retrain it with: python -m training.train_devise --bundle " + str(bundle.root))
    return SearchEngine(bundle, backbone, words, head)
