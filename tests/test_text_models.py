"""The classifier, the tagger and the CRF: brute-force checks and the invariants of padding."""
import itertools

import pytest
import torch

from rnnkit.models.classifier import POOLINGS, ClassifierConfig, TextClassifier
from rnnkit.models.crf import CRF
from rnnkit.models.tagger import Tagger, TaggerConfig


def random_crf(K, seed=0):
    torch.manual_seed(seed)
    crf = CRF(K).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def brute_force(crf, emissions, length):
    """All K^length tag sequences of one sentence: (log Z, best sequence, its score)."""
    K = crf.num_tags
    scores = {}
    for tags in itertools.product(range(K), repeat=length):
        t = torch.tensor(tags)
        s = crf.start[t[0]] + emissions[torch.arange(length), t].sum() + crf.end[t[-1]]
        s = s + sum(crf.trans[t[i - 1], t[i]] for i in range(1, length))
        scores[tags] = s
    best = max(scores, key=lambda k: scores[k])
    return torch.logsumexp(torch.stack(list(scores.values())), 0), best, scores


@pytest.mark.parametrize("K,lengths", [(2, [1, 3]), (3, [4, 2, 1]), (4, [5, 3])])
def test_crf_partition_viterbi_and_score_equal_brute_force(K, lengths):
    crf = random_crf(K)
    B, T = len(lengths), max(lengths)
    emissions = torch.randn(B, T, K, dtype=torch.float64)
    mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    log_z = crf.log_partition(emissions, mask)
    tags, best_scores = crf.viterbi(emissions, mask)
    for b, n in enumerate(lengths):
        z, best, scores = brute_force(crf, emissions[b], n)
        assert torch.allclose(log_z[b], z)
        assert tuple(tags[b, :n].tolist()) == best and (tags[b, n:] == 0).all()
        assert torch.allclose(best_scores[b], scores[best])
        some = torch.randint(0, K, (T,))
        some[n:] = 0
        assert torch.allclose(crf.score(emissions[b:b + 1], some[None], mask[b:b + 1])[0], scores[tuple(some[:n].tolist())])


def test_crf_probabilities_sum_to_one_and_nll_is_their_negative_log():
    crf = random_crf(3, seed=1)
    emissions = torch.randn(1, 3, 3, dtype=torch.float64)
    mask = torch.ones(1, 3, dtype=torch.bool)
    total = sum(torch.exp(-crf.nll(emissions, torch.tensor([t]), mask)) for t in itertools.product(range(3), repeat=3))
    assert torch.allclose(total, torch.tensor(1.0, dtype=torch.float64))


def test_crf_learns_a_transition_rule():
    """I must follow B: with uninformative emissions the CRF has to learn it from transitions."""
    torch.manual_seed(0)
    crf = CRF(3)   # 0 = O, 1 = B, 2 = I
    tags = torch.tensor([[1, 2, 0, 1, 2], [0, 1, 2, 2, 0]])
    emissions = torch.zeros(2, 5, 3)
    emissions[:, :, 1] = (tags == 1).float() * 3     # B is visible, I and O are not told apart
    mask = torch.ones(2, 5, dtype=torch.bool)
    opt = torch.optim.Adam(crf.parameters(), lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        crf.nll(emissions, tags, mask).backward()
        opt.step()
    assert crf.trans[1, 2] > crf.trans[1, 0]          # after B comes I rather than O
    assert crf.viterbi(emissions, mask)[0][0, :2].tolist() == [1, 2]


def classifier(pooling, cell="lstm", bidirectional=True):
    torch.manual_seed(0)
    return TextClassifier(ClassifierConfig(30, 3, cell, 8, 6, 2, bidirectional, pooling, 0.0)).double().eval()


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_classifier_batch_with_padding_equals_each_text_alone(pooling, cell):
    model = classifier(pooling, cell)
    rows = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12]]
    ids = torch.zeros(3, 5, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    lengths = torch.tensor([len(r) for r in rows])
    batch = model(ids, lengths)
    for i, r in enumerate(rows):
        alone = model(torch.tensor([r]), torch.tensor([len(r)]))
        assert torch.allclose(batch[i], alone[0], atol=1e-10), (pooling, i)
    ids2 = ids.clone()
    ids2[1, 2:] = 17                                         # other padding values change nothing
    assert torch.allclose(model(ids2, lengths), batch, atol=1e-10)


def test_attention_weights_are_inspectable_zero_on_padding_and_sum_to_one():
    model = classifier("attention")
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    model(ids, torch.tensor([4, 2]))
    w = model.last_attention
    assert w.shape == (2, 4)
    assert torch.allclose(w.sum(1), torch.ones(2, dtype=w.dtype)) and (w[1, 2:] == 0).all()


@pytest.mark.parametrize("char_encoder", ["cnn", "lstm", "none"])
@pytest.mark.parametrize("crf", [False, True])
def test_tagger_padding_changes_nothing_and_loss_ignores_padding(char_encoder, crf):
    torch.manual_seed(0)
    model = Tagger(TaggerConfig(20, 15, 4, "gru", 6, 5, 6, char_encoder, 5, 1, 0.0, crf)).double().eval()
    words = torch.tensor([[2, 3, 4], [5, 6, 0]])
    chars = torch.tensor([[[2, 3], [4, 0], [5, 6]], [[7, 0], [8, 9], [0, 0]]])
    lengths = torch.tensor([3, 2])
    tags = torch.tensor([[1, 2, 3], [0, 1, 0]])
    em = model(words, chars, lengths)
    alone = model(words[1:, :2], chars[1:, :2], lengths[1:])
    assert torch.allclose(em[1, :2], alone[0], atol=1e-10)
    loss = model.loss(em, tags, lengths)
    tags2 = tags.clone()
    tags2[1, 2] = 3                                          # the tag under padding does not count
    assert torch.allclose(model.loss(em, tags2, lengths), loss)
    pred = model.decode(em, lengths)
    assert pred.shape == (2, 3) and pred[1, 2] == 0
