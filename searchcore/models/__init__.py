"""Vectors in, vectors out: the networks and word tables that turn photos and words into vectors.

* backbone, backbones, clip: a photo → CNN features and ImageNet logits (timm), or CLIP's image/text embeddings;
* words, wordnet, classnames: word vectors and query parsing, WordNet, ImageNet's class names as words;
* head (the DeViSE network, the one module that imports torch at its top), headview (the head as a search reads
  it, without torch), headwords (the word side both share), fit (training it), conse (ConSE and the blends);
* wordclass, hierarchy, exemplars, propagation, tagging: the word signals and the tag vocabulary;
* scoring: the one Text → Image score that the engine serves and the metrics measure.

Nothing here imports from :mod:`searchcore.build`, :mod:`searchcore.quality` or :mod:`searchcore.serve`, nor reads a
bundle (tests/test_imports.py checks it). Nothing is imported here, so importing one module stays cheap.
"""
