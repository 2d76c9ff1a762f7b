"""classify --word-dropout: in training a token becomes the unknown token (id 1) with the given probability;
padding (id 0) and evaluation are never touched."""
import torch

from rnnkit.tasks.classify import make_step


class Recorder(torch.nn.Module):
    """Stands in for the classifier: records the ids it reads, returns zero logits for 2 classes."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.w = torch.nn.Parameter(torch.zeros(2))

    def forward(self, ids, lengths):
        self.seen.append(ids.clone())
        return self.w.expand(len(ids), 2)


def batch():
    ids = torch.randint(2, 50, (64, 40))
    ids[:, 30:] = 0                                      # padding at the end of every row
    return ids, torch.full((64,), 30), torch.zeros(64, dtype=torch.long)


def test_word_dropout_replaces_tokens_by_unknown_in_training_only():
    torch.manual_seed(0)
    model, (ids, lengths, y) = Recorder(), batch()
    step = make_step(model, word_dropout=0.25)
    step((ids, lengths, y), None)
    seen = model.seen[-1]
    dropped = (seen != ids)
    assert (seen[dropped] == 1).all()                   # dropped tokens become the unknown token
    assert (seen[:, 30:] == 0).all()                     # padding stays padding
    assert abs(dropped[:, :30].float().mean().item() - 0.25) < 0.03
    model.eval()
    step((ids, lengths, y), None)
    assert torch.equal(model.seen[-1], ids)              # evaluation reads the text as it is


def test_no_word_dropout_by_default():
    model, (ids, lengths, y) = Recorder(), batch()
    make_step(model)((ids, lengths, y), None)
    assert torch.equal(model.seen[-1], ids)
