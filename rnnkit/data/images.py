"""Images with captions: a folder plus a Flickr8k-form CSV, read with Pillow, split by image, batched.

The captions file is a CSV with a header naming the columns ``image`` and
``caption`` (others are ignored), one row per caption, several rows per image:

    image,caption
    1000268201_693b08cb0e.jpg,A child in a pink dress is climbing up a set of stairs .
    1000268201_693b08cb0e.jpg,A girl going into a wooden building .

Image names are relative to the images folder (default: the CSV's folder, or
its ``Images/`` subfolder when it has one, as Flickr8k unpacks). Every image
is converted to RGB and resized to a square (bilinear; the aspect ratio is not
kept); pixels stay uint8 until a batch is made, then are normalised by the
training set's per-channel mean and standard deviation.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..models.seq2seq import BOS, EOS, PAD

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(caption: str) -> list[str]:
    """Lower-cased words, with punctuation split off: "A dog, running." → a dog , running ."""
    return WORD.findall(caption.lower())


@dataclass
class CaptionSet:
    """images (N, 3, S, S) uint8; captions[i]: the captions of image i; names[i]: its file name;
    scenes[i]: the generated scene behind image i (built-in data only, else None)."""
    images: torch.Tensor
    captions: list[list[str]]
    names: list[str]
    scenes: list[dict] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: list[int]) -> "CaptionSet":
        return CaptionSet(self.images[index], [self.captions[i] for i in index], [self.names[i] for i in index],
                          None if self.scenes is None else [self.scenes[i] for i in index])


def read_captions_csv(path: str | Path) -> dict[str, list[str]]:
    """{image name: its captions, in file order} from a Flickr8k-form CSV (see the module docstring)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip().lower() for c in reader.fieldnames or []]
            if "image" not in columns or "caption" not in columns:
                raise UserError(f"{path}: expected a header with the columns 'image' and 'caption' "
                                f"(Flickr8k form), got {reader.fieldnames}")
            reader.fieldnames = columns
            out: dict[str, list[str]] = {}
            for row in reader:
                name, caption = (row.get("image") or "").strip(), (row.get("caption") or "").strip()
                if not name or not caption:
                    raise UserError(f"{path} line {reader.line_num}: empty image name or caption")
                out.setdefault(name, []).append(caption)
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise UserError(f"{path}: malformed CSV ({e})") from None
    if not out:
        raise UserError(f"{path} has no captions")
    return out


def images_dir(csv_path: str | Path, given: str | None) -> Path:
    """The folder holding the images: ``given``, else the CSV's folder (its Images/ subfolder if present)."""
    if given is not None:
        if not Path(given).is_dir():
            raise UserError(f"images folder not found: {given}")
        return Path(given)
    folder = Path(csv_path).parent
    return folder / "Images" if (folder / "Images").is_dir() else folder


def load_image(path: str | Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB; UserError naming the file if it is missing or not an image."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
    except FileNotFoundError:
        raise UserError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UserError(f"cannot read image {path}: {e}") from None


def load_images(paths: list[Path], size: int) -> torch.Tensor:
    """(N, 3, size, size) uint8."""
    return torch.from_numpy(np.stack([load_image(p, size) for p in paths])).permute(0, 3, 1, 2).contiguous()


def read_folder(csv_path: str | Path, images: str | None, size: int) -> CaptionSet:
    """The images named in ``csv_path`` (each once) with their captions; every file is checked first."""
    caps = read_captions_csv(csv_path)
    folder = images_dir(csv_path, images)
    paths = [folder / name for name in caps]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise UserError(f"image not found: {missing[0]}{more} (named in {csv_path}; images are read from {folder})")
    return CaptionSet(load_images(paths, size), list(caps.values()), list(caps))


def split_by_image(data: CaptionSet, fraction: float, seed: int) -> tuple[CaptionSet, CaptionSet]:
    """(train, held out): a seeded ``fraction`` of the images, with all their captions, is held out."""
    n = len(data)
    n_out = int(round(n * fraction))
    if n_out < 1 or n - n_out < 1:
        raise UserError(f"{n} images are too few to hold out {fraction:.0%} for validation; "
                        "pass more images or a --valid file")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return data.subset(sorted(order[n_out:])), data.subset(sorted(order[:n_out]))


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images (N, 3, S, S), on the 0-1 scale."""
    x = images[:4096].float().div(255).transpose(0, 1).flatten(1)
    return x.mean(1).tolist(), x.std(1).clamp_min(1e-3).tolist()


def normalise(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (B, 3, S, S) → float32, zero mean and unit deviation per channel (by the training set's figures)."""
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (images.float().div(255) - m) / s


class CaptionBatches:
    """Batches of ``batch_size`` images, each with ALL its captions: (images (B, 3, S, S) float, per_image (B,)
    the number of captions of each image, tgt_in (N, T) BOS first, tgt_out (N, T) EOS last), N = per_image.sum(),
    the rows in image order. ``ids[i]`` are the encoded captions of image i, each ending in EOS.

    The encoder runs once per image and its output is repeated for the image's captions (Captioner.forward's
    ``per_image``): with the three captions of a scene that is a third of the encoder work of one row per
    (image, caption) pair (benchmarks/caption.md)."""

    def __init__(self, images: torch.Tensor, ids: list[list[list[int]]], batch_size: int, mean, std,
                 shuffle: bool = False):
        self.images, self.ids, self.batch_size, self.mean, self.std, self.shuffle = (
            images, ids, batch_size, mean, std, shuffle)

    def __len__(self) -> int:
        return -(-len(self.ids) // self.batch_size)

    def __iter__(self):
        n = len(self.ids)
        order = torch.randperm(n).tolist() if self.shuffle else list(range(n))
        for start in range(0, n, self.batch_size):
            chosen = order[start:start + self.batch_size]
            rows = [c for i in chosen for c in self.ids[i]]
            T = max(len(r) for r in rows)
            tgt_out = torch.full((len(rows), T), PAD, dtype=torch.long)
            for b, r in enumerate(rows):
                tgt_out[b, :len(r)] = torch.tensor(r)
            tgt_in = torch.cat([torch.full((len(rows), 1), BOS, dtype=torch.long), tgt_out[:, :-1]], 1)
            tgt_in[tgt_in == EOS] = PAD    # EOS never enters the decoder (it ends each row)
            per_image = torch.tensor([len(self.ids[i]) for i in chosen])
            yield normalise(self.images[chosen], self.mean, self.std), per_image, tgt_in, tgt_out
