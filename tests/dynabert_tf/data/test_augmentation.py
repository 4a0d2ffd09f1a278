"""TinyBERT's data augmentation (dynabert_tf/data/augmentation.py): candidates against numpy
references, determinism by seed, the replacement rate, the MLM path's inputs."""

import re

import numpy as np
import pytest

from dynabert_tf.data import augmentation
from dynabert_tf.data.tasks import Example

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "is", "not", ".", ",",
         "good", "great", "fine", "bad", "awful", "film", "movie", "story", "plot", "actor",
         "act", "##ing", "##s", "charm", "##ly", "funny", "dull", "long", "short", "scene",
         "music", "cast", "script", "ending", "slow", "fast", "smart", "silly", "sweet"]
WORDS = ["good", "great", "fine", "bad", "awful", "film", "movie", "story", "plot", "actor",
         "funny", "dull", "long", "short", "scene", "music", "cast", "script", "ending"]


def wordpiece(vocabulary):
    """A greedy longest-match WordPiece tokenizer over `vocabulary` (lowercasing)."""
    ids = {token: i for i, token in enumerate(vocabulary)}

    def tokenize(words):
        result = []
        for word in words:
            word, pieces, start = word.lower(), [], 0
            while start < len(word):
                end = len(word)
                while end > start and (word[start:end] if start == 0
                                       else "##" + word[start:end]) not in ids:
                    end -= 1
                if end == start:
                    pieces = [ids["[UNK]"]]
                    break
                pieces.append(ids[word[start:end] if start == 0 else "##" + word[start:end]])
                start = end
            result.append(pieces)
        return result
    return tokenize


def finder(num_candidates=3, mlm=None, seed=0):
    embeddings = np.random.default_rng(seed).normal(size=(len(VOCAB), 8)).astype("float32")
    return augmentation.CandidateFinder(VOCAB, embeddings, wordpiece(VOCAB), num_candidates,
                                        mlm=mlm)


def _cosine_top(query, pool_rows, k, exclude=None):
    """numpy reference: the k rows of highest cosine (float64), best first."""
    pool = pool_rows.astype("float64")
    scores = pool @ query / np.linalg.norm(pool, axis=1) / np.linalg.norm(query)
    if exclude is not None:
        scores[exclude] = -np.inf
    return list(np.argsort(-scores, kind="stable")[:k])


def test_nearest_neighbours_match_numpy_in_any_chunking():
    rng = np.random.default_rng(1)
    queries, pool = rng.normal(size=(23, 6)), rng.normal(size=(50, 6))
    exclude = rng.integers(-1, 50, size=23)
    got = augmentation.nearest_neighbours(queries, pool, 5, exclude, chunk=7)
    for query, skip, row in zip(queries, exclude, got):
        assert list(row) == _cosine_top(query, pool, 5, skip if skip >= 0 else None)


def test_embedding_candidates_one_piece_several_pieces_and_unknown():
    f = finder(num_candidates=4)
    pool = [i for i, t in enumerate(VOCAB) if augmentation.is_replaceable(t)]
    assert "the" not in [VOCAB[i] for i in pool] and "##ing" not in [VOCAB[i] for i in pool]
    found = f.embedding_candidates(["film", "acting", "zzz"])
    film = VOCAB.index("film")
    want = _cosine_top(f.embeddings[film], f.embeddings[pool], 4, pool.index(film))
    assert found["film"] == [VOCAB[pool[j]] for j in want]
    # A word of several pieces is the mean of its pieces' rows: act + ##ing.
    mean = f.embeddings[[VOCAB.index("act"), VOCAB.index("##ing")]].mean(axis=0)
    assert found["acting"] == [VOCAB[pool[j]] for j in _cosine_top(mean, f.embeddings[pool], 4)]
    assert found["zzz"] == []  # [UNK]: never replaced


def test_sentence_candidates_skip_stop_words_and_punctuation_and_keep_case():
    f = finder()
    text = "The Film is not GOOD, the plot drags."
    [slots] = f.sentence_candidates([text])
    assert [text[s:e] for s, e, _ in slots] == ["Film", "GOOD", "plot"]  # "drags": [UNK]
    film, good, plot = (c for _, _, c in slots)
    assert all(c[0].isupper() and c[1:].islower() for c in film)
    assert all(c.isupper() for c in good) and all(c.islower() for c in plot)


def _examples(n, seed=0, pairs=False):
    rng = np.random.default_rng(seed)
    sentence = lambda: " ".join(rng.choice(WORDS, 8)) + " is the " + rng.choice(WORDS) + "."
    return [Example(sentence(), sentence() if pairs else None, int(rng.integers(2)))
            for _ in range(n)]


def test_deterministic_by_seed_and_independent_of_chunking():
    examples = _examples(30)
    augmenter = augmentation.Augmenter(finder(), replace_prob=0.4, copies=5)
    whole = augmenter.augment(examples, seed=7)
    parts = [augmenter.augment(examples[:11], seed=7),
             augmenter.augment(examples[11:], seed=7, first_index=11)]
    assert whole.examples == parts[0].examples + parts[1].examples
    assert whole.replaced == parts[0].replaced + parts[1].replaced
    again = augmentation.Augmenter(finder(), replace_prob=0.4, copies=5).augment(examples, seed=7)
    assert again.examples == whole.examples
    other = augmenter.augment(examples, seed=8)
    assert other.examples != whole.examples
    for index, copy in whole.examples:  # no copy repeats its original or another copy
        assert copy.text_a != examples[index].text_a and copy.label == examples[index].label
    assert len({(i, c.text_a) for i, c in whole.examples}) == len(whole.examples)


@pytest.mark.parametrize("replace_prob", [0.4, 0.1])
def test_replaces_at_the_configured_rate(replace_prob):
    """Counted from the texts: each replaceable word changes with probability p (its
    candidates never include itself), and nothing else changes."""
    augmenter = augmentation.Augmenter(finder(), replace_prob, copies=20)
    tokens = lambda text: re.findall(r"\w+|[^\w\s]", text)
    slots_total = changed = replaced = 0
    for index, example in enumerate(_examples(100, seed=3)):
        [slots] = augmenter.finder.sentence_candidates([example.text_a])
        copies, count = augmenter.draw_copies(example, [slots], seed=0, index=index)
        replaced += count
        original = tokens(example.text_a)
        for copy in copies:
            new = tokens(copy.text_a)
            assert len(new) == len(original)
            for old, word in zip(original, new):
                if old != word:
                    assert augmentation.is_replaceable(old), (old, word)
                    assert word in dict(((example.text_a[s:e], c) for s, e, c in slots))[old]
                    changed += 1
        slots_total += len(copies) * len(slots)
    assert changed == replaced
    sigma = np.sqrt(replace_prob * (1 - replace_prob) / slots_total)
    assert abs(changed / slots_total - replace_prob) < 4 * sigma, changed / slots_total


def test_pairs_augment_both_sentences():
    examples = _examples(10, pairs=True)
    result = augmentation.Augmenter(finder(), 0.5, copies=4).augment(examples, seed=0)
    assert any(c.text_a != examples[i].text_a for i, c in result.examples)
    assert any(c.text_b != examples[i].text_b for i, c in result.examples)
    assert result.eligible == 4 * sum(
        len(s) for s in finder().sentence_candidates([e.text_a for e in examples]
                                                     + [e.text_b for e in examples]))


def test_mlm_candidates_use_tinyberts_masked_input():
    """One-piece words: [CLS] sentence-with-[MASK] [SEP] sentence [SEP] goes to the MLM and
    its top-K whole words (the word itself excluded) are the candidates; a word of several
    pieces keeps its embedding neighbours."""
    logits = np.random.default_rng(5).normal(size=len(VOCAB)).astype("float32")
    calls = []

    def mlm(token_ids, segment_ids, padding_mask, positions):
        calls.append((token_ids, segment_ids, padding_mask, positions))
        return np.tile(logits, (len(token_ids), 1))

    f = finder(num_candidates=3, mlm=mlm)
    text = "Good acting, dull plot"
    [slots] = f.sentence_candidates([text])
    ids = {t: i for i, t in enumerate(VOCAB)}
    pieces = [ids["good"], ids["act"], ids["##ing"], ids[","], ids["dull"], ids["plot"]]
    token_ids, segment_ids, padding_mask, positions = calls[0]
    assert len(token_ids) == 3  # good, dull, plot; acting is two pieces
    for row, position, word in zip(range(3), positions, ("good", "dull", "plot")):
        masked = [ids["[MASK]"] if p == ids[word] else p for p in pieces]
        want = [ids["[CLS]"], *masked, ids["[SEP]"], *pieces, ids["[SEP]"]]
        assert list(token_ids[row]) == want and token_ids[row, position] == ids["[MASK]"]
        assert list(segment_ids[row]) == [0] * 8 + [1] * 7 and padding_mask[row].all()
    pool = [i for i, t in enumerate(VOCAB) if augmentation.is_replaceable(t)]
    by_word = {text[s:e]: c for s, e, c in slots}
    for word in ("dull", "plot"):
        ranked = [VOCAB[i] for i in sorted(pool, key=lambda i: -logits[i]) if VOCAB[i] != word]
        assert by_word[word] == ranked[:3]
    assert by_word["Good"] == [c.title() for c in sorted(
        (VOCAB[i] for i in pool if VOCAB[i] != "good"), key=lambda t: -logits[ids[t]])[:3]]
    assert by_word["acting"] == f.embedding_candidates(["acting"])["acting"]
