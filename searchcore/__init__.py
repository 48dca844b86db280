"""searchcore: search photos and words by meaning (CNN features, GloVe vectors, a DeViSE head, hnswlib).

    from searchcore import load_engine
    engine = load_engine("./assets/tuxpaint")     # a local bundle folder or a Hub dataset repo id
    engine.similar_images("photo.jpg", k=8)
    engine.similar_images_by_class("photo.jpg", "Siamese cat", k=8)
    engine.similar_words("said", k=10)
    engine.tag_image("photo.jpg", k=5)
    engine.search_images("cat + sofa - dog", k=8)

    # a visitor's own photos: a private collection, searched by the same engine
    store = engine.collection_store()
    with store.using("visitor", create=True) as mine:
        engine.add_images(mine, read_uploads([("photos.zip", "photos.zip")], mine.room[1]).candidates)
        engine.search_images("bird", k=8, collection=mine)

A bundle built with a CLIP backbone (``clip:openai/clip-vit-base-patch32``, :mod:`searchcore.models.clip`) answers the
same searches in CLIP's space.

Importing this package is cheap: torch, timm, transformers and hnswlib are imported only when a name
that needs them is used, and a search by words never needs torch.

The package is built in floors, each importing only its own and those below (tests/test_imports.py): the ground
floor here (errors, storage, index, ...), :mod:`searchcore.models` (vectors in, vectors out), the bundle's files
(:mod:`searchcore.bundle`, :mod:`searchcore.postings`, :mod:`searchcore.layout`), :mod:`searchcore.quality`
(metrics, the served settings' choice), :mod:`searchcore.build` (making bundles) and :mod:`searchcore.serve`
(the engine, a visitor's photos, the page's parts).

Words the code uses in its own sense:

* **bundle**: one collection made searchable, a folder or Hub dataset repo with ``manifest.json``, the photos'
  rows, the indexes, the posting tables and, once trained, ``head/`` (:mod:`searchcore.bundle`).
* **head**: the small DeViSE network that maps a photo's CNN features into the word space
  (:mod:`searchcore.models.head`). The *measured* head (trained without the test photos) gave the recorded
  figures; the *final* head (the same recipe on every photo) is the one a bundle serves.
* **ConSE**: a photo in word space with no training, its top ImageNet classes' word vectors weighted by their
  probabilities (Norouzi et al. 2014; :class:`searchcore.models.conse.ConSE`).
* **served**: as the running engine answers. The *served settings* (:class:`searchcore.settings.ServedSettings`)
  are chosen on validation photos; the *served* column of the figures ranks as the engine ranks, every signal
  mixed (:mod:`searchcore.models.scoring`).
* **word signals**: per (photo, word) scores beside the cosines: the class hierarchy, the exemplars and the word
  classifier, stored per word as posting lists (:mod:`searchcore.postings`).
* **the seed**: the notebook this project grew from (VGG16 features, GloVe 300-d vectors, Pascal Sentences, a
  DeViSE head trained with a cosine loss); the design follows its idea of one vector per photo and per word.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AssetSourceError,
    BadArgumentError,
    BundleError,
    EmptyCollectionError,
    ImageError,
    LimitError,
    QueryError,
    SearchError,
    UnknownWordError,
)

_LAZY = {
    "SearchEngine": "serve.engine",
    "load_engine": "serve.engine",
    "Hit": "serve.engine",
    "WordHit": "serve.engine",
    "EngineInfo": "serve.engine",
    "Backbone": "models.backbone",
    "Features": "models.backbone",
    "load_backbone": "models.backbones",
    "DEFAULT_BACKBONE": "models.backbone",
    "OFFLINE_BACKBONE": "models.backbone",
    "ClipBackbone": "models.clip",
    "DEFAULT_CLIP": "models.clip",
    "WordVectors": "models.words",
    "load_word_vectors": "models.words",
    "parse_query": "models.words",
    "OFFLINE_WORDS": "models.words",
    "DEFAULT_WORDS": "models.words",
    "VectorIndex": "index",
    "exact_search": "index",
    "ShardedIndex": "shards",
    "DeViSEHead": "models.head",
    "ConSE": "models.conse",
    "Bundle": "bundle",
    "open_bundle": "bundle",
    "Collection": "collection",
    "Item": "collection",
    "load_collection": "collection",
    "load_image": "images",
    "CollectionStore": "serve.personal",
    "PersonalCollection": "serve.personal",
    "read_uploads": "serve.uploads",
}

__all__ = [
    "DEFAULT_BACKBONE",
    "DEFAULT_CLIP",
    "DEFAULT_WORDS",
    "OFFLINE_BACKBONE",
    "OFFLINE_WORDS",
    "AssetSourceError",
    "Backbone",
    "BadArgumentError",
    "Bundle",
    "BundleError",
    "ClipBackbone",
    "Collection",
    "CollectionStore",
    "ConSE",
    "DeViSEHead",
    "EmptyCollectionError",
    "EngineInfo",
    "Features",
    "Hit",
    "ImageError",
    "Item",
    "LimitError",
    "PersonalCollection",
    "QueryError",
    "SearchEngine",
    "SearchError",
    "ShardedIndex",
    "UnknownWordError",
    "VectorIndex",
    "WordHit",
    "WordVectors",
    "exact_search",
    "load_backbone",
    "load_collection",
    "load_engine",
    "load_image",
    "load_word_vectors",
    "open_bundle",
    "parse_query",
    "read_uploads",
]

if TYPE_CHECKING:
    from .bundle import Bundle, open_bundle
    from .collection import Collection, Item, load_collection
    from .images import load_image
    from .index import VectorIndex, exact_search
    from .models.backbone import DEFAULT_BACKBONE, OFFLINE_BACKBONE, Backbone, Features
    from .models.backbones import load_backbone
    from .models.clip import DEFAULT_CLIP, ClipBackbone
    from .models.conse import ConSE
    from .models.head import DeViSEHead
    from .models.words import DEFAULT_WORDS, OFFLINE_WORDS, WordVectors, load_word_vectors, parse_query
    from .serve.engine import EngineInfo, Hit, SearchEngine, WordHit, load_engine
    from .serve.personal import CollectionStore, PersonalCollection
    from .serve.uploads import read_uploads
    from .shards import ShardedIndex


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'searchcore' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
