"""Build a backbone from its spec: a timm CNN (:mod:`searchcore.models.backbone`) or a CLIP
(:mod:`searchcore.models.clip`).

The one door for both kinds, so neither module needs the other's: CLIP's backbone is built on the timm one's
batching, and this module is the only place that knows both.
"""

from __future__ import annotations

from .backbone import DEFAULT_BACKBONE, Backbone, load_timm_backbone
from .clip import is_clip_spec


def load_backbone(spec: str = DEFAULT_BACKBONE, batch_size: int | None = None) -> Backbone:
    """The backbone named by ``spec``: ``clip:<Hub id or folder>`` builds a CLIP (same interface, CLIP's space),
    anything else a timm model with its own preprocessing (:mod:`searchcore.models.backbone`'s docstring lists them)."""
    if is_clip_spec(spec):
        from .clip import load_clip_backbone

        return load_clip_backbone(spec, batch_size)
    return load_timm_backbone(spec, batch_size)
