"""CLIP as a semantic space: images and text embedded by one model, loaded through transformers.

A CLIP backbone is named by the spec ``"clip:<source>"``: a Hub model id (default
``clip:openai/clip-vit-base-patch32``) or a local folder holding a CLIP checkpoint saved with ``save_pretrained``
(config.json, model.safetensors and the processor's files). Both go through :func:`load_clip`, so the tests load
a tiny random CLIP from a folder through exactly the code that loads a Hub checkpoint.

:class:`ClipBackbone` is a :class:`searchcore.models.backbone.Backbone`, so the one build pipeline (resumable
extraction, bundle, indexes) runs it unchanged. What it stores per photo:

* ``features``: CLIP's image embedding, unit length (Image → Image and Text → Image search these);
* ``logits``: CLIP's zero-shot ImageNet logits, ``logit_scale · cos(image, text("a photo of a {class}."))``, so
  ConSE, the classifier-led tags and the by-class search work as they do for a CNN, with CLIP's text tower playing
  the classifier (CLIP's own zero-shot recipe, Radford et al. 2021 §3.1.4).

Text is embedded with prompts (:data:`PROMPT`); a query of several words is the weighted sum of its terms' unit
text embeddings, like the word-vector queries (:func:`searchcore.models.words.parse_query`). transformers and torch are
imported only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import storage
from ..errors import AssetSourceError, QueryError
from ..hub import download, is_repo_id
from ..index import unit_rows
from .backbone import Backbone, Features, imagenet_class_names

if TYPE_CHECKING:
    import torch

    from .words import Term

CLIP_PREFIX = "clip:"
DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_CLIP = CLIP_PREFIX + DEFAULT_CLIP_MODEL
#: How a word or a tag phrase is put to CLIP's text tower: CLIP was trained on captions, and a bare word is a poor
#: caption (the CLIP paper's prompt "A photo of a {label}." gained 1.3 points of ImageNet accuracy).
PROMPT = "a photo of a {}."
#: The checkpoint files a Hub download fetches: weights as safetensors (not the TF or Flax copies a repo may hold),
#: the config and the processor's files. The Space README's ``preload_from_hub`` lists the same files.
HUB_FILES = ("*.json", "*.txt", "*.safetensors")
#: The by-class search adds this much of the class's unit text embedding to the photo's unit image embedding.
#: Additive, not element-wise: CLIP's dimensions carry no sign-consistent "evidence for a class" as a CNN's ReLU
#: features times a classifier row do, so multiplying would scramble the embedding; adding pulls the query toward
#: the class in the shared space. 1.0 weighs the photo and the class alike (untuned: the real checkpoint is needed).
CLASS_BIAS = 1.0
TEXT_BATCH = 64


def is_clip_spec(spec: str) -> bool:
    return str(spec).startswith(CLIP_PREFIX)


def clip_source(spec: str) -> str:
    """``"clip:openai/clip-vit-base-patch32"`` → ``"openai/clip-vit-base-patch32"``."""
    source = str(spec)[len(CLIP_PREFIX):].strip() if is_clip_spec(spec) else ""
    if not source:
        raise AssetSourceError(f"{spec!r} names no CLIP checkpoint; pass {DEFAULT_CLIP!r} or 'clip:/path/to/folder'.")
    return source


def resolve_checkpoint(source: str) -> Path:
    """A local checkpoint folder, or a Hub model id fetched with ``snapshot_download`` (weights, config, processor)."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise AssetSourceError(f"{source!r} holds no config.json: save a CLIP model there with "
                                   "CLIPModel.save_pretrained and its processor with CLIPProcessor.save_pretrained.")
        return path
    if is_repo_id(source) and not path.exists():
        return download(source, "the CLIP checkpoint", "pass a local folder holding a CLIP checkpoint",
                        allow_patterns=list(HUB_FILES))
    raise AssetSourceError(f"No CLIP checkpoint at {source!r}: pass a Hub model id such as {DEFAULT_CLIP_MODEL!r} "
                           "or a local folder saved with save_pretrained.")


def load_clip(source: str) -> tuple[Any, Any]:
    """``(CLIPModel in eval mode, CLIPProcessor)`` from a Hub id or a local folder (:func:`resolve_checkpoint`)."""
    from transformers import CLIPModel, CLIPProcessor

    folder = resolve_checkpoint(source)
    try:
        model = CLIPModel.from_pretrained(folder)
        processor = CLIPProcessor.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise AssetSourceError(f"{source!r} is not a CLIP checkpoint transformers can load "
                               f"({type(exc).__name__}: {exc}).") from exc
    return model.eval(), processor


def _pooled(out: Any) -> torch.Tensor:
    """transformers 4 returns the projected embedding as a tensor, 5 as ``pooler_output`` of an output object."""
    import torch

    return out if isinstance(out, torch.Tensor) else out.pooler_output


@dataclass
class ClipBackbone(Backbone):
    """CLIP's two towers behind the :class:`Backbone` interface; build it with :func:`load_clip_backbone`.

    Safe to share between threads: inference holds no state, and the class text embeddings are computed once
    under a lock.
    """

    processor: Any = None
    checkpoint: Path | None = None  # the folder the model was loaded from: keys the class-prompt cache
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _classes: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.spec

    @cached_property
    def feature_dim(self) -> int:
        return int(self.model.config.projection_dim)

    @property
    def num_classes(self) -> int:
        return len(imagenet_class_names())

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp().item())

    def classifier_weights(self) -> np.ndarray:
        """The unit text embeddings of the ImageNet classes' prompts, (1000, dim): CLIP's zero-shot classifier."""
        with self._lock:
            if self._classes is None:
                names = [description.split(",")[0].strip() for description in imagenet_class_names()]
                cache = self._class_cache(names)
                if cache is not None and cache.is_file():
                    cached = np.load(cache)
                    if cached.shape == (len(names), self.feature_dim):
                        self._classes = cached
                        return cached
                self._classes = self.embed_phrases(names)
                if cache is not None:
                    storage.save_npy(cache, self._classes)
            return self._classes

    def _class_cache(self, names: list[str]) -> Path | None:
        """Where the class prompts' embeddings are cached: ViT-B/32 takes about 21 s for them on 2 cores
        (docs/benchmarks.md §8), paid by every start without it. Keyed by the checkpoint's config and weight files
        (name, size, modification time), the prompt and the class names, so a changed checkpoint misses."""
        if self.checkpoint is None:
            return None
        key = hashlib.sha256(PROMPT.encode() + "\n".join(names).encode())
        for path in sorted(self.checkpoint.iterdir()):
            if path.name == "config.json":
                key.update(path.read_bytes())
            elif path.suffix in (".safetensors", ".bin"):
                stat = path.stat()
                key.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return storage.cache_dir() / "clip" / f"classes-{key.hexdigest()[:24]}.npy"

    def forward(self, batch: torch.Tensor) -> Features:
        """Unit image embeddings and zero-shot ImageNet logits of a preprocessed batch, (n, 3, H, W)."""
        import torch

        with torch.inference_mode():
            emb = _pooled(self.model.get_image_features(pixel_values=batch.to(self.device)))
        emb = unit_rows(emb.float().cpu().numpy())
        return Features(emb, (self.logit_scale * emb @ self.classifier_weights().T).astype(np.float32))

    def embed_texts(self, texts: Sequence[str], batch_size: int = TEXT_BATCH) -> np.ndarray:
        """Unit text embeddings, one row per text (no prompt added), in batches."""
        import torch

        tokenizer = self.processor.tokenizer
        limit = int(self.model.config.text_config.max_position_embeddings)
        rows = []
        for start in range(0, len(texts), batch_size):
            tokens = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True,
                               max_length=limit, return_tensors="pt")
            with torch.inference_mode():
                out = self.model.get_text_features(input_ids=tokens["input_ids"].to(self.device),
                                                   attention_mask=tokens["attention_mask"].to(self.device))
            rows.append(_pooled(out).float().cpu().numpy())
        return unit_rows(np.concatenate(rows)) if rows else np.zeros((0, self.feature_dim), np.float32)

    def embed_phrases(self, phrases: Sequence[str]) -> np.ndarray:
        """Unit text embeddings of words or tag phrases, each put in :data:`PROMPT`."""
        return self.embed_texts([PROMPT.format(p) for p in phrases])

    def embed_query(self, terms: Sequence[Term]) -> np.ndarray:
        """A parsed query as one unit vector: the weighted sum of its terms' prompted unit text embeddings.

        Any word works (CLIP's tokenizer splits unknown words into pieces), so there is no vocabulary error here.
        """
        vectors = self.embed_phrases([t.word for t in terms])
        total = np.asarray([t.weight for t in terms], np.float32) @ vectors
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise QueryError("The words cancel each other out; change the signs or weights.")
        return (total / norm).astype(np.float32)

    def class_query(self, image_embedding: np.ndarray, cls: int, bias: float = CLASS_BIAS) -> np.ndarray:
        """The by-class query: the photo's unit embedding pulled toward class ``cls``'s text embedding."""
        return unit_rows(unit_rows(np.atleast_2d(image_embedding)) + bias * self.classifier_weights()[cls])[0]


def load_clip_backbone(spec: str = DEFAULT_CLIP, batch_size: int | None = None) -> ClipBackbone:
    """The CLIP named by ``spec`` (``clip:<Hub id or folder>``) with its own image processor as the transform."""
    import os

    folder = resolve_checkpoint(clip_source(spec))
    model, processor = load_clip(str(folder))

    def transform(image: object) -> torch.Tensor:
        return processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    batch = batch_size or int(os.environ.get("SEARCH_BATCH_SIZE", 32))
    config = {"image_processor": processor.image_processor.to_dict()}
    return ClipBackbone(spec=spec, model=model, transform=transform, data_config=config, batch_size=batch,
                        processor=processor, checkpoint=folder)


def tag_embedder(backbone: Backbone) -> Callable[[Sequence[str]], np.ndarray] | None:
    """How a bundle's tag phrases are embedded: CLIP's text tower for a CLIP backbone, else None (word vectors)."""
    return backbone.embed_phrases if isinstance(backbone, ClipBackbone) else None
