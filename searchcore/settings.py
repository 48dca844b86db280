"""The served settings: one object, one name per setting, from the choice on validation photos to the head's file.

:func:`searchcore.quality.evaluation.choose_serving` chooses them, :meth:`searchcore.models.head.DeViSEHead.set_serving`
stores them in the head's ``config.json`` under these names, the manifest's ``training["settings"]`` and the model card
repeat them under the same names, and the engine and :mod:`searchcore.models.scoring` read them from the head.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ServedSettings:
    """How the served head is mixed with everything else, each setting chosen on validation photos."""

    conse_mix: float = 0.0  # ConSE's share of Text → Image's cosine for a word the head was trained on
    unseen_conse_mix: float = 0.0  # ... and for any other word (searchcore.models.scoring.query_mix)
    seen_similarity: float | None = None  # a word this close (cosine) to a trained word counts as trained
    neighbour_mix: float = 0.0  # the look-alikes' words in a photo's embedding (searchcore.models.propagation)
    word_mix: float = 0.0  # the word classifier's share of a trained word's score (searchcore.models.wordclass)
    class_mix: float = 0.0  # the class hierarchy's share of what the word classifier left (searchcore.models.hierarchy)
    unseen_class_mix: float = 0.0  # the class hierarchy's share of any other word's score
    exemplar_mix: float = 0.0  # the exemplars' share, for the words a photo is named by (searchcore.models.exemplars)
    tag_conse_mix: float = 0.0  # ConSE's share of Image → Tags' embedding (searchcore.models.conse.blend)
    ood_distance: float | None = None  # a photo farther than this from every collection photo is ConSE's alone

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ServedSettings:
        """The settings of ``values`` (a head's config, a manifest's record); other keys are ignored."""
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})

    def replace(self, **changes: Any) -> ServedSettings:
        return dataclasses.replace(self, **changes)
