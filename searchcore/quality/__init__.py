"""Measuring: the retrieval metrics, the served settings chosen on validation photos, the public real-photo sets.

* metrics: the rankers and metrics (known-answer tested), the same score the engine serves;
* evaluation: the served settings chosen on validation photos, every figure measured on test photos;
* realphotos, validation_photos: two disjoint public sets of real photographs (one to measure, one to choose on).

It stands on :mod:`searchcore.models` and the bundle files, never on :mod:`searchcore.build` or
:mod:`searchcore.serve`. Nothing is imported here.
"""
