"""Generated captioning data: scenes of shapes, each with several template captions (no download).

A scene has 1 to ``max_objects`` shapes (circle, square, triangle, star,
diamond) in five colours and two sizes, at random non-overlapping positions
with distinct left-to-right order, on a plain or textured background.
Pillow draws each scene at twice the size and shrinks it (anti-aliased).

Captions name every object left to right, so a right caption needs counting,
colour, shape, size and the spatial order, e.g.

    a small red circle to the left of a large blue square
    a large blue square to the right of a small red circle
    two shapes : a red circle and a blue square

Unseen combinations: five colour-shape pairs (``HELD_OUT``, each colour and
each shape once) never occur in the training, validation and test scenes;
the ``unseen`` split has at least one of them in every scene, so it measures
composition, not memorisation.
"""
from __future__ import annotations

import math
import random

import numpy as np
import torch

COLOURS = {"red": (215, 40, 40), "green": (30, 160, 60), "blue": (40, 80, 225), "yellow": (235, 200, 20),
           "purple": (145, 55, 185)}
SHAPES = ("circle", "square", "triangle", "star", "diamond")
SIZES = {"small": 0.11, "large": 0.18}           # radius as a fraction of the image side
HELD_OUT = frozenset({("red", "star"), ("green", "diamond"), ("blue", "circle"), ("yellow", "square"),
                      ("purple", "triangle")})
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six")


def polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    """The shape's outline inside a circle of radius r (None for a circle)."""
    if shape == "circle":
        return None
    if shape == "square":
        s = r * 0.8
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.8, cy), (cx, cy + r), (cx - r * 0.8, cy)]
    if shape == "triangle":
        return [(cx + r * math.cos(a), cy - r * math.sin(a)) for a in (math.pi / 2, math.pi * 7 / 6, -math.pi / 6)]
    if shape == "star":
        return [(cx + (r if k % 2 == 0 else 0.45 * r) * math.cos(math.pi / 2 + k * math.pi / 5),
                 cy - (r if k % 2 == 0 else 0.45 * r) * math.sin(math.pi / 2 + k * math.pi / 5)) for k in range(10)]
    raise ValueError(f"unknown shape {shape!r}")


def background(rng: random.Random, size: int, textured: bool) -> np.ndarray:
    """A pale plain colour, or the same with stripes or checks and pixel noise: (size, size, 3) uint8."""
    base = np.array([rng.randint(200, 245)] * 3, dtype=np.float32) + np.array([rng.randint(-8, 8) for _ in range(3)])
    img = np.broadcast_to(base, (size, size, 3)).copy()
    if textured:
        y, x = np.mgrid[:size, :size]
        period = rng.randint(4, 10)
        pattern = ((x // period + y // period) % 2 if rng.random() < 0.5 else ((x + y) // period) % 2)
        img -= 18.0 * pattern[..., None]
        img += np.random.default_rng(rng.randrange(2 ** 31)).normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def sample_scene(rng: random.Random, n: int, pairs: list[tuple[str, str]], must: list[tuple[str, str]] = ()) -> dict:
    """n objects (dicts with shape, colour, size, x, y in [0, 1]) sorted left to right, non-overlapping."""
    while True:
        chosen = list(must) + [rng.choice(pairs) for _ in range(n - len(must))]
        objects, ok = [], True
        for colour, shape in chosen:
            size = rng.choice(tuple(SIZES))
            r = SIZES[size]
            for _ in range(50):
                x, y = rng.uniform(r + 0.02, 1 - r - 0.02), rng.uniform(r + 0.02, 1 - r - 0.02)
                if all(math.hypot(x - o["x"], y - o["y"]) > r + SIZES[o["size"]] + 0.02 and abs(x - o["x"]) > 0.08
                       for o in objects):
                    objects.append(dict(shape=shape, colour=colour, size=size, x=x, y=y))
                    break
            else:
                ok = False
                break
        if ok:
            return {"objects": sorted(objects, key=lambda o: o["x"]), "textured": rng.random() < 0.5}


def render(scene: dict, size: int, rng: random.Random) -> np.ndarray:
    """The scene as a (size, size, 3) uint8 image: drawn at 2x, shrunk with a Lanczos filter."""
    from PIL import Image, ImageDraw
    big = 2 * size
    img = Image.fromarray(background(rng, big, scene["textured"]))
    draw = ImageDraw.Draw(img)
    for o in scene["objects"]:
        cx, cy, r = o["x"] * big, o["y"] * big, SIZES[o["size"]] * big
        outline = polygon(o["shape"], cx, cy, r)
        if outline is None:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=COLOURS[o["colour"]])
        else:
            draw.polygon(outline, fill=COLOURS[o["colour"]])
    return np.asarray(img.resize((size, size), Image.LANCZOS))


def captions(scene: dict) -> list[str]:
    """Three template captions, every object named left to right (see the module docstring)."""
    objs = scene["objects"]
    full = [f"a {o['size']} {o['colour']} {o['shape']}" for o in objs]
    short = [f"a {o['colour']} {o['shape']}" for o in objs]
    n = len(objs)

    def listing(parts):
        return parts[0] if n == 1 else " , ".join(parts[:-1]) + " and " + parts[-1]
    if n == 1:
        bg = "textured" if scene["textured"] else "plain"
        return [full[0], f"{full[0]} on a {bg} background", f"one shape : {short[0]}"]
    if n == 2:
        return [f"{full[0]} to the left of {full[1]}", f"{full[1]} to the right of {full[0]}",
                f"two shapes : {listing(short)}"]
    return [f"{listing(full)} from left to right", f"from right to left {listing(full[::-1])}",
            f"{NUMBERS[n]} shapes : {listing(short)}"]


def parse_objects(caption: str) -> list[tuple[str, str]]:
    """The (colour, shape) pairs a caption names: each shape word with the last colour word before it."""
    found, colour = [], None
    for w in caption.split():
        if w in COLOURS:
            colour = w
        elif w in SHAPES:
            found.append((colour, w))
            colour = None
    return found


def attributes_right(caption: str, scene: dict) -> bool:
    """Whether the caption names exactly the scene's objects, each with its right shape and colour."""
    return sorted(parse_objects(caption), key=str) == sorted(((o["colour"], o["shape"]) for o in scene["objects"]),
                                                              key=str)


def make_split(count: int, seed: int, image_size: int = 64, max_objects: int = 4, unseen: bool = False,
               min_objects: int = 1) -> tuple[torch.Tensor, list[list[str]], list[dict]]:
    """``count`` scenes: images (N, 3, S, S) uint8, their captions, the scenes. ``unseen``: every scene has a
    held-out colour-shape pair; otherwise none has one."""
    if not 1 <= min_objects <= max_objects <= len(NUMBERS) - 1:
        raise ValueError(f"need 1 <= min_objects <= max_objects <= {len(NUMBERS) - 1}")
    rng = random.Random(seed)
    all_pairs = [(c, s) for c in COLOURS for s in SHAPES]
    seen = [p for p in all_pairs if p not in HELD_OUT]
    images, caps, scenes = np.empty((count, image_size, image_size, 3), np.uint8), [], []
    for i in range(count):
        n = rng.randint(min_objects, max_objects)
        scene = (sample_scene(rng, n, all_pairs, [rng.choice(sorted(HELD_OUT))]) if unseen
                 else sample_scene(rng, n, seen))
        images[i] = render(scene, image_size, rng)
        caps.append(captions(scene))
        scenes.append(scene)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), caps, scenes


SPLIT_SEEDS = {"train": 1, "valid": 2, "test": 3, "unseen": 4}


def scene_splits(sizes: dict[str, int], seed: int = 0, image_size: int = 64, max_objects: int = 4) -> dict:
    """{split: (images, captions, scenes)} for train, valid, test (seen pairs only) and unseen; each split
    has its own seed, so a test scene never depends on the training-set size."""
    return {name: make_split(n, 1000 * seed + SPLIT_SEEDS[name], image_size, max_objects, unseen=name == "unseen")
            for name, n in sizes.items()}
