"""Captioning data: generated scenes and their captions, the Flickr8k-form reader, split by image, batches."""
import pytest
import torch

from rnnkit.data import images as imgdata
from rnnkit.data import scenes
from rnnkit.errors import UserError
from rnnkit.models.seq2seq import BOS, EOS, PAD


def test_scene_captions_name_every_object_left_to_right():
    im, caps, sc = scenes.make_split(40, seed=5, image_size=32)
    assert im.shape == (40, 3, 32, 32) and im.dtype == torch.uint8
    for cs, s in zip(caps, sc):
        xs = [o["x"] for o in s["objects"]]
        assert xs == sorted(xs)
        assert len(cs) == 3
        for c in cs:
            assert scenes.attributes_right(c, s), (c, s)
        first = cs[0].split()
        named = [w for w in first if w in scenes.SHAPES]
        assert named == [o["shape"] for o in s["objects"]]          # the first template reads left to right
    one = next(s for s in sc if len(s["objects"]) == 2)
    wrong = scenes.captions(one)[0].replace(one["objects"][0]["colour"], "x", 1)
    assert not scenes.attributes_right(wrong, one)
    assert not scenes.attributes_right(scenes.captions(one)[0].split(" to the")[0], one)   # one object missing


def test_unseen_split_holds_the_held_out_pairs_only():
    _, _, seen = scenes.make_split(200, seed=1, image_size=16)
    _, _, unseen = scenes.make_split(60, seed=2, image_size=16, unseen=True)
    pairs = lambda s: {(o["colour"], o["shape"]) for o in s["objects"]}   # noqa: E731
    assert all(not pairs(s) & scenes.HELD_OUT for s in seen)
    assert all(pairs(s) & scenes.HELD_OUT for s in unseen)


def test_scenes_are_seeded():
    a = scenes.make_split(5, seed=3, image_size=16)
    b = scenes.make_split(5, seed=3, image_size=16)
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    assert not torch.equal(a[0], scenes.make_split(5, seed=4, image_size=16)[0])


def test_split_by_image_never_by_caption():
    n = 30
    data = imgdata.CaptionSet(torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 2, 2),
                              [[f"caption {i} {j}" for j in range(1 + i % 3)] for i in range(n)],
                              [f"img{i}.png" for i in range(n)])
    train, valid = imgdata.split_by_image(data, 0.2, seed=0)
    assert len(valid) == 6 and len(train) == 24
    assert not set(train.names) & set(valid.names)
    assert sorted(train.names + valid.names) == sorted(data.names)
    for part in (train, valid):           # every image keeps all its captions and its own pixels
        for name, caps, img in zip(part.names, part.captions, part.images):
            i = int(name[3:-4])
            assert caps == data.captions[i] and int(img[0, 0, 0]) == i
    again = imgdata.split_by_image(data, 0.2, seed=0)[1].names
    assert again == valid.names and imgdata.split_by_image(data, 0.2, seed=1)[1].names != valid.names


def test_read_captions_csv(tmp_path):
    f = tmp_path / "captions.txt"
    f.write_text('image,caption\na.png,"A dog, running."\nb.png,a cat\na.png,Two dogs\n')
    assert imgdata.read_captions_csv(f) == {"a.png": ["A dog, running.", "Two dogs"], "b.png": ["a cat"]}
    assert imgdata.tokenize("A dog, running.") == ["a", "dog", ",", "running", "."]
    f.write_text("file,text\na.png,a dog\n")
    with pytest.raises(UserError, match="'image' and 'caption'"):
        imgdata.read_captions_csv(f)
    f.write_text("image,caption\n")
    with pytest.raises(UserError, match="no captions"):
        imgdata.read_captions_csv(f)
    f.write_text("image,caption\na.png,\n")
    with pytest.raises(UserError, match="line 2"):
        imgdata.read_captions_csv(f)


def test_caption_batches_hold_every_caption_of_each_image():
    images = torch.arange(3, dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 3, 4, 4).contiguous()
    ids = [[[5, 6, EOS]], [[7, EOS], [8, 9, 10, EOS]], [[11, EOS]]]
    batches = list(imgdata.CaptionBatches(images, ids, 2, [0.0] * 3, [1 / 255] * 3))
    assert len(batches) == 2
    x, per_image, tgt_in, tgt_out = batches[0]
    assert x.shape == (2, 3, 4, 4) and x[:, 0, 0, 0].tolist() == [0.0, 1.0]    # images 0 and 1, normalised
    assert per_image.tolist() == [1, 2]                                          # image 1's two captions
    assert tgt_out.tolist() == [[5, 6, EOS, PAD], [7, EOS, PAD, PAD], [8, 9, 10, EOS]]
    assert tgt_in.tolist() == [[BOS, 5, 6, PAD], [BOS, 7, PAD, PAD], [BOS, 8, 9, 10]]
    # shuffled: every image once per epoch, each with all its captions, in its rows' order
    torch.manual_seed(0)
    seen = []
    for x, per_image, _, out in imgdata.CaptionBatches(images, ids, 2, [0.0] * 3, [1 / 255] * 3, shuffle=True):
        rows = iter(out.tolist())
        for img, k in zip(x[:, 0, 0, 0].long().tolist(), per_image.tolist()):
            seen.append((img, [tuple(t for t in next(rows) if t != PAD) for _ in range(k)]))
    assert sorted(seen) == [(i, [tuple(c) for c in caps]) for i, caps in enumerate(ids)]
