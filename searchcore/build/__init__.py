"""Making bundles: extraction (one process or Ray), writing the files and indexes, training, ``--update``.

* write: a bundle's files from extracted features (indexes, tag vocabulary, posting tables, the map);
* extract, ray_extract: resumable feature extraction, here or on a Ray cluster (the same code per photo);
* pipeline: build and train a bundle end to end (what ``training/`` calls); offline: the demo bundle, built once;
* update: bring a bundle up to date with its photo folder; card: the head's model card.

It stands on :mod:`searchcore.models`, the bundle files and :mod:`searchcore.quality` (a training run measures its
head), never on :mod:`searchcore.serve`. Nothing is imported here.
"""
