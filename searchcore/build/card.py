"""The head's model card: README.md (metrics table, timings, command, split) and training.png (loss curves).

The card follows the manifest: :func:`write_card` when a head is trained and measured, :func:`write_kept_card` when
``--update`` keeps a head whose figures it drops (they were measured on photos that changed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import storage
from ..models.exemplars import EXEMPLARS
from ..models.propagation import NEIGHBOURS

METRIC_NAMES = {
    "text_image_p10": "Text→Image precision@10 (label words)",
    "caption_word_p5": "Text→Image precision@5 (caption words)",
    "zero_shot_text_image_p10": "Zero-shot Text→Image precision@10",
    "tag_hit5": "Tag hit@5 (collection photos)",
    "zero_shot_tag_hit5": "Zero-shot tag hit@5",
    "real_photo_tag_hit5": "Tag hit@5 (public real photos)",
}


FRONT_MATTER = """---
library_name: semantic-search
tags: [devise, image-search, zero-shot-image-classification, pytorch_model_hub_mixin]
license: mit
---
"""
TRAIN_COMMAND = "python -m training.train_devise --bundle BUNDLE"


def metrics_table(metrics: dict[str, Any]) -> str:
    methods = [m for m in ("conse", "head", "served", "clip") if m in metrics]
    keys = [k for k in METRIC_NAMES if any(k in metrics[m] for m in methods)]
    lines = ["| metric | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for key in keys:
        cells = [f"{metrics[m][key]:.3f}" if metrics[m].get(key) is not None else "–" for m in methods]
        lines.append(f"| {METRIC_NAMES[key]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    epochs = [row["epoch"] for row in history]
    ax.plot(epochs, [row["train_loss"] for row in history], label="train")
    ax.plot(epochs, [row["val_loss"] for row in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("DeViSE head training")
    ax.legend()
    fig.tight_layout()
    with storage.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _target_lines(targets: dict[str, Any]) -> list[str]:
    from ..models.fit import TargetReport

    known = {k: v for k, v in targets.items() if k in TargetReport.__dataclass_fields__}
    return TargetReport(**known).lines() if known else []


def write_card(folder: Path, card: dict[str, Any]) -> None:
    """Write README.md and training.png into the head folder (called by the pipeline before the head is swapped in)."""
    metrics, training = card["metrics"], card["training"]
    config = training["config"]
    plot_history(training["history"], folder / "training.png")
    split = training["split"]
    mix = training["settings"]
    targets = "\n".join(f"- {line}" for line in _target_lines(training.get("targets", {})))
    real_photos = metrics.get("real_photos", {})
    real = f"{real_photos.get('count', 0)} public real photos (searchcore/quality/realphotos.py)"
    similar = (f" (or within cosine similarity {mix['seen_similarity']} of one)" if mix.get("seen_similarity")
               else "")
    served_note = ("The head served here was then trained the same way on every photo, test photos included; the "
                   "measured one is kept in `measured/`." if training.get("served_on_every_photo") else "")
    chosen = training.get("mix_scores", {}).get("real_photos")
    chosen_real = (f" These tag rules were chosen on the validation photos and on {chosen['count']} other public real "
                   "photos (searchcore/quality/validation_photos.py), never on those the figures below are measured on."
                   if chosen else "")
    extract = training.get("extract_seconds")
    speed = (f"Training took **{training['train_seconds']:.1f} s** on cached features; extracting those features "
             f"took **{extract:.1f} s**." if extract else f"Training took **{training['train_seconds']:.1f} s**.")
    text = f"""{FRONT_MATTER}
# DeViSE head for semantic-search

Maps {training.get('backbone', 'backbone')} image features into the word-vector space so that text finds images and
images get tags. Loss: **{config['loss']}**; best epoch {training['best_epoch']} of {training['epochs_run']} run
(early stopping on the validation split, patience {config['patience']}).

{speed}

Served with ConSE, every setting chosen on the **validation** split (with
{len(training.get('calibration_classes', []))} classes held out of a calibration head to play unseen ones):
Text→Image mixes the head's and ConSE's rankings with ConSE weight {mix['conse_mix']:g} for words the head was
trained on{similar} and {mix['unseen_conse_mix']:g} for words it never saw; each photo's head embedding is blended
with the words of its {NEIGHBOURS} nearest other photos by weight {mix.get('neighbour_mix', 0):g}. A word of the
training targets is {mix.get('word_mix', 0):g} the head's word classifier's (a logistic regression per word on the
raw features); a word WordNet places above ImageNet classes is the CNN's probability on the classes below it (`dog`:
the 118 breeds) by {mix.get('class_mix', 0):g} of what the classifier left for a trained word and by
{mix.get('unseen_class_mix', 0):g} for any other word. A word some collection photo is named by then gives
{mix.get('exemplar_mix', 0):g} of the score to each photo's cosine to its nearest such photo (among its
{EXEMPLARS} nearest). Image→Tags blends
the two embeddings with ConSE weight {mix['tag_conse_mix']:g}; the classifier names a photo from probability
{mix.get('class_min_prob')}, collection photos nearer than cosine distance {mix.get('neighbour_distance')} lend
their caption words, and photos farther than {training.get('ood_distance')} from every collection photo get
ConSE's embedding and are named by the classifier from probability
{mix.get('unseen_class_min_prob', mix.get('class_min_prob'))}.{chosen_real}

Targets: each photo's label blended with its captions' words (caption weight {config.get('caption_weight', 0):g}).
{targets}

## Metrics

On the **{metrics.get('split', 'test')}** split ({metrics.get('eval_items')} photos, seen neither by training nor by
any choice above) and on {real}, measured with the head trained on the training and validation photos.
{served_note}

{metrics_table(metrics)}

Image→Image precision@10 on raw backbone features: {metrics.get('features_image_image_p10')}.

![training curve](training.png)

## Reproduce

```
{training.get('command') or TRAIN_COMMAND}
```

Split: {len(split['train'])} training, {len(split['val'])} validation, {len(split.get('test', []))} test,
{len(split['holdout'])} held-out-class items (stratified by label, seed {config['seed']}); held-out classes:
{', '.join(config['holdout_classes']) or 'none'}.
"""
    storage.write_text(folder / "README.md", text)


def write_kept_card(folder: Path, training: dict[str, Any], update: dict[str, Any], count: int) -> None:
    """README.md for a head that ``--update`` kept: what it is and how it was trained, and no figures.

    ``training``: the manifest's training record from before the update (empty if it had none); ``update``: the
    update's record (photos added, changed, removed). Its figures, timings and training curve were measured on the
    photos the update changed and the manifest drops them, so the card does too (``publish`` uploads this card).
    """
    config = training.get("config") or {}
    loss = f" Loss: **{config['loss']}**." if config.get("loss") else ""
    trained = (f"\n## How it was trained\n\nOn the bundle's photos before the update:\n\n```\n{training['command']}"
               "\n```\n" if training.get("command") else "")
    text = f"""{FRONT_MATTER}
# DeViSE head for semantic-search

Maps {training.get('backbone', 'backbone')} image features into the word-vector space so that text finds images and
images get tags.{loss} Served with ConSE by the settings recorded in the bundle's manifest.json (`serving`).

## Metrics

**Not measured on the photos it serves now.** The bundle was updated to its photo folder ({update.get('added', 0)}
added, {update.get('changed', 0)} changed, {update.get('removed', 0)} removed; {count} photos now) and this head was
kept as it was, not trained or measured again. The figures measured when it was trained describe the earlier photos,
so they were dropped. To measure it on these photos, train it again:

```
{TRAIN_COMMAND}
```
{trained}"""
    (folder / "training.png").unlink(missing_ok=True)
    storage.write_text(folder / "README.md", text)
