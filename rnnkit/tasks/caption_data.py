"""The caption task's data and vocabulary (tasks/caption.py trains, evaluates and predicts with them): the
libraries it needs, its data sets (the built-in scenes, or a captions CSV in the Flickr8k form with its images)
and ``Captions``, what a checkpoint holds besides the weights.
"""
from __future__ import annotations

from ..data import images as imgdata
from ..data.parallel import TokenVocabulary
from ..errors import UserError


def need_libraries() -> None:
    for module, why in (("PIL", "Pillow reads and draws the images"), ("sacrebleu", "sacrebleu computes BLEU")):
        try:
            __import__(module)
        except ImportError:
            raise UserError(f"the caption task needs {module} ({why}): pip install 'rnnkit[caption]'") from None


def load_data(o) -> tuple[dict[str, imgdata.CaptionSet], str]:
    """({"train", "valid"[, "test", "unseen"]}: CaptionSet), a description of the source; ``o``: the task's
    Options."""
    if o.train is None:
        from ..data import scenes
        sizes = dict(train=o.train_size, valid=o.valid_size, test=o.test_size, unseen=o.unseen_size)
        parts = scenes.scene_splits(sizes, o.seed, o.image_size, o.max_objects)
        sets = {k: imgdata.CaptionSet(im, caps, [f"{k}-{i}" for i in range(len(caps))], sc)
                for k, (im, caps, sc) in parts.items()}
        return sets, f"the built-in scenes (1 to {o.max_objects} shapes)"
    data = imgdata.read_folder(o.train, o.images, o.image_size)
    if o.valid:
        return {"train": data, "valid": imgdata.read_folder(o.valid, o.images, o.image_size)}, o.train
    train, valid = imgdata.split_by_image(data, o.val_fraction, o.seed)
    return {"train": train, "valid": valid}, o.train


class Captions:
    """What a checkpoint holds besides weights: the vocabulary, the image statistics, the length limit."""

    def __init__(self, vocab: TokenVocabulary, mean: list[float], std: list[float], max_len: int):
        self.vocab, self.mean, self.std, self.max_len = vocab, mean, std, max_len

    @classmethod
    def build(cls, train: imgdata.CaptionSet, min_count: int) -> "Captions":
        tokens = [imgdata.tokenize(c) for caps in train.captions for c in caps]
        mean, std = imgdata.channel_stats(train.images)
        return cls(TokenVocabulary.build(tokens, min_count), mean, std, max(map(len, tokens)) + 5)

    def to_dict(self) -> dict:
        return {"vocab": list(self.vocab.tokens), "mean": self.mean, "std": self.std, "max_len": self.max_len}

    @classmethod
    def from_dict(cls, d: dict) -> "Captions":
        return cls(TokenVocabulary(tuple(d["vocab"])), d["mean"], d["std"], d["max_len"])

    def ids(self, data: imgdata.CaptionSet) -> list[list[list[int]]]:
        return [[self.vocab.encode(imgdata.tokenize(c)) for c in caps] for caps in data.captions]

    def text(self, ids) -> str:
        return " ".join(self.vocab.decode(ids))
