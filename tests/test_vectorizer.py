"""TextVectorizer: vocabulary order, OOV, standardisation, splitting, padding, saving; the readers' edge cases."""
import pytest
import torch

from rnnkit.data import TextVectorizer
from rnnkit.data.tabular import label_order

TEXTS = ["The film is great!", "the film is dull.", "A great, great cast", "the end"]


def test_vocabulary_is_pad_oov_then_by_frequency_and_capped():
    vec = TextVectorizer(max_tokens=6, standardize="lower", split="word").fit(TEXTS)
    # counts: great 3, the 3, film 2, is 2, then 1 each; ties alphabetical
    assert vec.vocabulary() == ["", "[UNK]", "great", "the", "film", "is"]
    assert vec.encode("The great unknown film") == [3, 2, 1, 4]


def test_keras_defaults_strip_punctuation_and_split_on_whitespace():
    vec = TextVectorizer().fit(["Hello, World!", "hello there"])
    assert vec.tokenize("HELLO, world!!") == ["hello", "world"]
    assert vec.vocabulary()[:3] == ["", "[UNK]", "hello"]


def test_word_split_keeps_punctuation_as_tokens_and_characters_split_every_char():
    assert TextVectorizer(split="word", standardize=None).fit(["x"]).tokenize("Isn't it!") == \
        ["Isn", "'", "t", "it", "!"]
    vec = TextVectorizer(split="character", standardize="lower").fit(["abc"])
    assert vec.tokenize("Ab d") == ["a", "b", " ", "d"]
    assert vec.encode("abz") == [vec.vocabulary().index("a"), vec.vocabulary().index("b"), 1]


def test_min_count_and_max_length():
    vec = TextVectorizer(standardize="lower", split="word", min_count=2, max_length=3).fit(TEXTS)
    assert "cast" not in vec.vocabulary() and "great" in vec.vocabulary()
    assert len(vec.encode("the the the the the")) == 3


def test_encode_batch_pads_with_zero_and_returns_lengths():
    vec = TextVectorizer(split="word", standardize="lower").fit(TEXTS)
    ids, lengths = vec.encode_batch(["the film", "great", ""])
    assert ids.shape == (3, 2) and lengths.tolist() == [2, 1, 0]
    assert ids[1, 1] == 0 and (ids[2] == 0).all()
    assert torch.equal(vec(["the film", "great", ""]), ids)


def test_round_trip_through_a_dict_gives_the_same_ids():
    vec = TextVectorizer(max_tokens=50, split="word", standardize="lower").fit(TEXTS)
    again = TextVectorizer.from_dict(vec.to_dict())
    assert again.vocabulary() == vec.vocabulary()
    assert again.encode("the cast is dull and new") == vec.encode("the cast is dull and new")


def test_subword_vocabulary_reads_unseen_words_from_pieces():
    pytest.importorskip("tokenizers")
    texts = ["unhappy happy unkind kind playing played player plays"] * 20
    vec = TextVectorizer(max_tokens=60, split="subword", standardize="lower").fit(texts)
    assert len(vec) <= 60 and vec.vocabulary()[:2] == ["", "[UNK]"]
    ids = vec.encode("unplayed")                  # never seen whole, but its pieces were
    assert ids and 1 not in ids and 0 not in ids
    again = TextVectorizer.from_dict(vec.to_dict())
    assert again.encode("unplayed kindly") == vec.encode("unplayed kindly")


def test_errors():
    with pytest.raises(ValueError, match="call fit"):
        TextVectorizer().encode("x")
    with pytest.raises(ValueError, match="unknown split"):
        TextVectorizer(split="bytes")
    with pytest.raises(ValueError, match="at least 3"):
        TextVectorizer(max_tokens=2)


def test_label_order_is_numeric_for_integers():
    assert label_order(["10", "2", "1"]) == ["1", "2", "10"]
    assert label_order(["pos", "neg"]) == ["neg", "pos"]
