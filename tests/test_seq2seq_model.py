"""Seq2Seq model and decoding: stepping equals teacher forcing, masking, padding, greedy = beam 1,
beam search = brute-force enumeration on a tiny model."""
from __future__ import annotations

import itertools

import pytest
import torch

from rnnkit.models.decoding import beam_search, greedy, length_penalty, next_log_probs
from rnnkit.models.seq2seq import BOS, EOS, PAD, Seq2Seq, Seq2SeqConfig, sequence_loss
from rnnkit.train import load_checkpoint, restore_model, save_checkpoint

CONFIGS = {
    "gru-additive-bi": dict(cell="gru", attention="additive"),
    "lstm-general-bi-2x2": dict(cell="lstm", attention="general", num_layers=2, decoder_layers=2),
    "lstm-general-inputfeed": dict(cell="lstm", attention="general", input_feed=True),
    "gru-dot-uni": dict(cell="gru", attention="dot", bidirectional=False),
    "rnn-none-2layer": dict(cell="rnn", attention="none", decoder_layers=2),
    "gru-dot-inputfeed-tied": dict(cell="gru", attention="dot", bidirectional=False, input_feed=True,
                                   tie_embeddings=True),
    "mingru-additive-zeros": dict(cell="mingru", attention="additive", bridge="zeros"),
}


def make_model(seed=0, src_vocab=9, tgt_vocab=8, hidden=6, emb=5, **kw):
    torch.manual_seed(seed)
    model = Seq2Seq(Seq2SeqConfig(src_vocab, tgt_vocab, hidden_size=hidden, embedding_dim=emb, **kw)).double()
    with torch.no_grad():   # larger weights: sharper, less uniform distributions
        for p in model.parameters():
            p.mul_(2.0)
    return model.eval()


def batch(seed=1, B=4, S=7, T=5, src_vocab=9, tgt_vocab=8):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([S, S - 2, 3, 1][:B])
    src = torch.randint(4, src_vocab, (B, S), generator=g)
    src[torch.arange(S)[None] >= lengths[:, None]] = PAD
    tgt = torch.randint(3, tgt_vocab, (B, T), generator=g)
    tgt[:, 0] = BOS
    return src, lengths, tgt


@pytest.mark.parametrize("name", CONFIGS)
def test_step_by_step_equals_teacher_forcing(name):
    model = make_model(**CONFIGS[name])
    src, lengths, tgt = batch()
    logits, weights = model(src, lengths, tgt)
    memory, state = model.encode(src, lengths)
    for t in range(tgt.shape[1]):
        out, state, w = model.step(tgt[:, t], state, memory)
        torch.testing.assert_close(out, logits[:, t], rtol=1e-10, atol=1e-10)
        if weights is not None:
            torch.testing.assert_close(w, weights[:, t], rtol=1e-10, atol=1e-10)
    assert (weights is None) == (CONFIGS[name]["attention"] == "none")


@pytest.mark.parametrize("kind", ["additive", "general"])
def test_attention_gives_padding_zero_weight(kind):
    model = make_model(attention=kind)
    src, lengths, tgt = batch()
    _, weights = model(src, lengths, tgt)                       # (B, T, S)
    pad = torch.arange(src.shape[1])[None, None] >= lengths[:, None, None]
    assert torch.all(weights.masked_select(pad.expand_as(weights)) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2], dtype=weights.dtype))
    assert torch.all(weights.masked_select(~pad.expand_as(weights)) > 0)


@pytest.mark.parametrize("name", ["gru-additive-bi", "lstm-general-bi-2x2", "rnn-none-2layer"])
def test_padding_and_batching_do_not_change_outputs(name):
    model = make_model(**CONFIGS[name])
    src, lengths, tgt = batch()
    logits, _ = model(src, lengths, tgt)
    wide = torch.cat([src, torch.full((src.shape[0], 4), PAD)], 1)   # four more columns of padding
    logits_wide, _ = model(wide, lengths, tgt)
    torch.testing.assert_close(logits_wide, logits, rtol=1e-10, atol=1e-10)
    for b in range(src.shape[0]):   # each sentence alone, unpadded
        alone, _ = model(src[b:b + 1, :lengths[b]], lengths[b:b + 1], tgt[b:b + 1])
        torch.testing.assert_close(alone[0], logits[b], rtol=1e-10, atol=1e-10)
    hyps = beam_search(model, src, lengths, beam=3)
    hyps_wide = beam_search(model, wide, lengths, beam=3)
    assert [h[0].tokens for h in hyps] == [h[0].tokens for h in hyps_wide]


@pytest.mark.parametrize("alpha,penalty", [(0.0, "gnmt"), (0.8, "gnmt"), (1.0, "length")])
@pytest.mark.parametrize("name", ["gru-additive-bi", "lstm-general-inputfeed", "rnn-none-2layer"])
def test_beam_width_one_is_greedy(name, alpha, penalty):
    model = make_model(seed=3, **CONFIGS[name])
    src, lengths, _ = batch(seed=4)
    g = greedy(model, src, lengths, max_len_a=1.0, max_len_b=4, alpha=alpha, penalty=penalty)
    b = beam_search(model, src, lengths, beam=1, max_len_a=1.0, max_len_b=4, alpha=alpha, penalty=penalty)
    for gh, (bh,) in zip(g, b):
        assert gh.tokens == bh.tokens
        assert gh.score == pytest.approx(bh.score, abs=1e-9)
        torch.testing.assert_close(gh.attention, bh.attention)


def sequence_score(model, src, lengths, seq, alpha, penalty):
    """log P(seq + EOS | src) from the teacher-forced forward pass, divided by the length penalty."""
    tgt = torch.tensor([[BOS] + seq])
    with torch.no_grad():
        logits, _ = model(src, lengths, tgt)
    logits = logits[0].clone()
    logits[:, [PAD, BOS]] = float("-inf")
    logp = logits.log_softmax(-1)
    total = sum(float(logp[t, tok]) for t, tok in enumerate(seq + [EOS]))
    return total / length_penalty(len(seq) + 1, alpha, penalty)


@pytest.mark.parametrize("alpha,penalty", [(0.0, "gnmt"), (1.5, "gnmt"), (1.0, "length")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_finds_the_brute_force_best(seed, alpha, penalty):
    # target vocabulary PAD UNK BOS EOS a: the generatable tokens are UNK, EOS, a; at most 4 tokens with EOS
    model = make_model(seed=seed, tgt_vocab=5, attention="additive")
    src, lengths, _ = batch(seed=seed, B=1, S=5, tgt_vocab=5)
    max_tokens = 4
    symbols = [1, 4]   # UNK, a
    candidates = [list(s) for n in range(max_tokens) for s in itertools.product(symbols, repeat=n)]
    scored = sorted((sequence_score(model, src, lengths, s, alpha, penalty), s) for s in candidates)
    best_score, best = scored[-1]
    (hyp,) = beam_search(model, src, lengths, beam=64, max_len_a=0.0, max_len_b=max_tokens, alpha=alpha,
                         penalty=penalty)[0]
    assert hyp.tokens == best
    assert hyp.score == pytest.approx(best_score, abs=1e-9)
    top = beam_search(model, src, lengths, beam=64, max_len_a=0.0, max_len_b=max_tokens, alpha=alpha,
                      penalty=penalty, n_best=3)[0]
    assert [h.score for h in top] == pytest.approx([s for s, _ in scored[::-1][:len(top)]], abs=1e-9)


def test_batched_beam_search_equals_one_sentence_at_a_time():
    model = make_model(seed=5, cell="lstm", attention="general", input_feed=True)
    src, lengths, _ = batch(seed=6)
    together = beam_search(model, src, lengths, beam=4, alpha=0.6)
    for b in range(src.shape[0]):
        (alone,) = beam_search(model, src[b:b + 1, :lengths[b]], lengths[b:b + 1], beam=4, alpha=0.6)
        assert alone[0].tokens == together[b][0].tokens
        assert alone[0].score == pytest.approx(together[b][0].score, abs=1e-9)


def test_max_length_is_relative_to_the_source():
    model = make_model(seed=7, attention="additive")
    with torch.no_grad():   # a model that never wants to stop
        model.decoder.out.bias[EOS] = -50.0
    src, lengths, _ = batch(seed=8)
    for hyps in (greedy(model, src, lengths, max_len_a=1.0, max_len_b=2),
                 [h[0] for h in beam_search(model, src, lengths, beam=3, max_len_a=1.0, max_len_b=2)]):
        assert [len(h.tokens) + 1 for h in hyps] == [int(n) + 2 for n in lengths]


def test_scheduled_sampling_feeds_the_models_own_predictions():
    model = make_model(seed=9, attention="general")
    src, lengths, tgt = batch(seed=10)
    model.train()   # no dropout in the model: training mode only switches sampling on
    teacher, _ = model(src, lengths, tgt, sampling_ratio=0.0)
    free, _ = model(src, lengths, tgt, sampling_ratio=1.0)
    torch.testing.assert_close(free[:, 0], teacher[:, 0])
    memory, state = model.encode(src, lengths)
    prev = tgt[:, 0]
    for t in range(tgt.shape[1]):   # free running: each input is the previous argmax
        out, state, _ = model.step(prev, state, memory)
        torch.testing.assert_close(out, free[:, t], rtol=1e-10, atol=1e-10)
        prev = out.argmax(-1)
    assert not torch.allclose(free, teacher)


def test_label_smoothing_and_padding_in_the_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6)
    target = torch.tensor([[4, 5, PAD], [3, PAD, PAD]])
    plain = sequence_loss(logits, target)
    logp = logits.log_softmax(-1)
    real = target != PAD
    nll = -logp.gather(-1, target[..., None])[..., 0][real].mean()
    assert float(plain) == pytest.approx(float(nll), rel=1e-6)
    smooth = sequence_loss(logits, target, label_smoothing=0.1)
    expected = 0.9 * nll + 0.1 * (-logp.mean(-1)[real].mean())
    assert float(smooth) == pytest.approx(float(expected), rel=1e-6)


def test_tied_embeddings_share_one_matrix_and_survive_a_checkpoint(tmp_path):
    model = make_model(**CONFIGS["gru-dot-inputfeed-tied"])
    assert model.decoder.out.weight is model.decoder.embed.weight
    save_checkpoint(tmp_path / "m.safetensors", model.state_dict(), config={"model": model.config.to_dict()})
    ck = load_checkpoint(tmp_path / "m.safetensors")
    other = Seq2Seq(Seq2SeqConfig(**ck.config["model"])).double()
    restore_model(other, ck)
    assert other.decoder.out.weight is other.decoder.embed.weight
    src, lengths, tgt = batch()
    torch.testing.assert_close(other.eval()(src, lengths, tgt)[0], model(src, lengths, tgt)[0])


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="dot attention"):
        Seq2SeqConfig(5, 5, attention="dot", bidirectional=True)
    with pytest.raises(ValueError, match="input feeding"):
        Seq2SeqConfig(5, 5, attention="additive", input_feed=True)
    with pytest.raises(ValueError, match="unknown cell"):
        Seq2SeqConfig(5, 5, cell="transformer")
    model = make_model()
    src, lengths, _ = batch()
    with pytest.raises(ValueError, match="beam width"):
        beam_search(model, src, lengths, beam=0)
    with pytest.raises(ValueError, match="alpha"):
        greedy(model, src, lengths, alpha=-1)


def test_next_log_probs_never_generates_pad_or_bos():
    model = make_model()
    src, lengths, tgt = batch()
    memory, state = model.encode(src, lengths)
    lp, _, _ = next_log_probs(model, tgt[:, 0], state, memory)
    assert torch.all(lp[:, [PAD, BOS]] == float("-inf"))
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(len(lp), dtype=lp.dtype))


def test_search_runs_without_dropout_and_restores_the_mode():
    model = make_model(seed=11, attention="general", dropout=0.5)
    src, lengths, _ = batch(seed=12)
    expected = [h.tokens for h in greedy(model, src, lengths)]      # make_model returns it in eval mode
    model.train()
    assert [h.tokens for h in greedy(model, src, lengths)] == expected
    assert [h[0].tokens for h in beam_search(model, src, lengths, beam=1)] == expected
    assert model.training
