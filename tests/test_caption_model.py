"""The captioner: shapes, attention weights, decoding (beam 1 == greedy, stepping == teacher forcing),
batch independence, user encoders."""
import pytest
import torch
from torch import nn

from rnnkit.models.captioner import Captioner, CaptionerConfig
from rnnkit.models.decoding import beam_search, greedy
from rnnkit.models.seq2seq import BOS

V = 17


def make(attention="general", cell="gru", layers=1, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = CaptionerConfig(V, image_size=16, channels=(4, 6), pools=2, memory_size=12, cell=cell, hidden_size=12,
                          decoder_layers=layers, embedding_dim=8, attention=attention, **kw)
    return Captioner(cfg).eval()


@pytest.mark.parametrize("attention", ["general", "additive", "dot", "none"])
def test_shapes_and_attention_rows(attention):
    m = make(attention)
    x = torch.randn(3, 3, 16, 16)
    tgt = torch.randint(4, V, (3, 5))
    logits, w = m(x, tgt)
    assert logits.shape == (3, 5, V)
    assert m.grid == (4, 4)
    if attention == "none":
        assert w is None
    else:
        assert w.shape == (3, 5, 16)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 5))
        assert (w >= 0).all()


@pytest.mark.parametrize("attention,cell,layers", [("general", "gru", 1), ("additive", "lstm", 2), ("none", "gru", 2)])
def test_beam_width_one_is_greedy(attention, cell, layers):
    m = make(attention, cell, layers, seed=3)
    x = torch.randn(4, 3, 16, 16)
    ones = torch.ones(4, dtype=torch.long)
    g = greedy(m, x, ones, max_len_a=0, max_len_b=7)
    b = beam_search(m, x, ones, beam=1, max_len_a=0, max_len_b=7)
    assert [h.tokens for h in g] == [h[0].tokens for h in b]
    for hg, (hb,) in zip(g, b):
        assert hg.score == pytest.approx(hb.score, abs=1e-5)
        assert len(hg.tokens) <= 6                        # max_len_b bounds every caption, EOS included


@pytest.mark.parametrize("attention", ["general", "additive", "none"])
def test_stepping_equals_teacher_forcing(attention):
    m = make(attention, "lstm", 2, seed=1)
    x = torch.randn(2, 3, 16, 16)
    tgt = torch.cat([torch.full((2, 1), BOS), torch.randint(4, V, (2, 5))], 1)
    with torch.no_grad():
        logits, _ = m(x, tgt)
        memory, state = m.encode(x)
        for t in range(tgt.shape[1]):
            out, state, _ = m.step(tgt[:, t], state, memory)
            torch.testing.assert_close(out, logits[:, t], atol=1e-5, rtol=1e-4)


def test_batch_equals_one_image_at_a_time():
    m = make("general", seed=2)
    x = torch.randn(3, 3, 16, 16)
    tgt = torch.randint(4, V, (3, 6))
    with torch.no_grad():
        whole, w = m(x, tgt)
        for i in range(3):
            one, w1 = m(x[i:i + 1], tgt[i:i + 1])
            torch.testing.assert_close(one[0], whole[i], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(w1[0], w[i], atol=1e-6, rtol=1e-4)


def test_regions_know_their_position():
    """Two images that differ only by where a blob is give different region vectors at the blob: the
    coordinate channels make identical features at two places distinguishable."""
    m = make("general")
    x = torch.zeros(1, 3, 16, 16)
    r = m.regions(x)[0]                        # a blank image: the CNN sees the same thing everywhere inside
    assert not torch.allclose(r[5], r[6])      # (1,1) and (1,2) differ only by their coordinates


def test_any_grid_module_is_an_encoder():
    class Patches(nn.Module):                  # 4x4 patches, flattened: a "CNN" with no convolution
        def forward(self, x):
            return nn.functional.pixel_unshuffle(x, 4)     # (B, 48, h/4, w/4)
    cfg = CaptionerConfig(V, image_size=16, memory_size=10, hidden_size=10, embedding_dim=6)
    m = Captioner(cfg, encoder=Patches()).eval()
    assert m.grid == (4, 4)
    logits, w = m(torch.randn(2, 3, 16, 16), torch.randint(4, V, (2, 3)))
    assert logits.shape == (2, 3, V) and w.shape == (2, 3, 16)
    with pytest.raises(ValueError, match="feature grid"):
        Captioner(cfg, encoder=nn.Flatten())
    with pytest.raises(ValueError, match="built for 16x16"):
        m(torch.randn(1, 3, 32, 32), torch.randint(4, V, (1, 3)))


def test_config_validation():
    with pytest.raises(ValueError, match="multiple of"):
        CaptionerConfig(V, image_size=20, pools=3)
    with pytest.raises(ValueError, match="unknown attention"):
        CaptionerConfig(V, attention="bahdanau")
    with pytest.raises(ValueError, match="dot attention"):
        CaptionerConfig(V, attention="dot", memory_size=10, hidden_size=12)


@pytest.mark.parametrize("attention", ["general", "additive", "none"])
def test_per_image_equals_repeating_the_images(attention):
    """Encoding each image once for all its captions equals a batch with the image repeated per caption."""
    m = make(attention, seed=5)
    x = torch.randn(3, 3, 16, 16)
    per_image = torch.tensor([2, 1, 3])
    tgt = torch.randint(4, V, (6, 5))
    logits, w = m(x, tgt, per_image)
    want, want_w = m(x.repeat_interleave(per_image, 0), tgt)
    torch.testing.assert_close(logits, want)
    if w is not None:
        torch.testing.assert_close(w, want_w)
    with pytest.raises(ValueError, match="one count per image"):
        m(x, tgt, torch.tensor([3, 3]))
