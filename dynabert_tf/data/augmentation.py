"""TinyBERT's data augmentation (Jiao et al. 2020, Alg. 1), as DynaBERT uses it.

Every word of a sentence that is alphabetic and not a stop word gets K candidates: the top-K
predictions of a masked language model at its position when the word is one word-piece and
an MLM is given, otherwise its K nearest whole words by cosine of input token embeddings.
Each of `copies` augmented versions of an example then replaces every such word, with
probability `replace_prob`, by one of its candidates drawn uniformly.

    finder = CandidateFinder(vocabulary, embeddings, tokenize, num_candidates=15)
    augmenter = Augmenter(finder, replace_prob=0.4, copies=20)
    result = augmenter.augment(examples, seed=42, first_index=0)   # AugmentResult

Choices where TinyBERT's script and this code part (each tested):
- Candidates come from the model's own vocabulary: whole-word entries (letters only, no
  `##`, no stop word), never the word itself. TinyBERT takes GloVe's 100k words for
  embedding neighbours, which are not available offline; the model's input token embeddings
  stand in for them. A word of several word-pieces is embedded as the mean of its pieces'
  rows; a word holding [UNK] gets no candidates and is never replaced.
- The MLM input is TinyBERT's: `[CLS] sentence-with-[MASK] [SEP] sentence [SEP]`; its top-K
  is taken among the whole-word entries (TinyBERT takes the top K, then drops `##` pieces).
- Both sentences of a pair are augmented in the same copy; copies equal to the original or
  to an earlier copy are dropped (as TinyBERT does), so an example yields at most `copies`.
- Every random draw of example i comes from `numpy.random.default_rng([seed, i])`, so the
  output depends on the seed and the example's index only, not on how the examples are
  split into chunks: a resumed run writes the same copies.
- A candidate keeps the word's case pattern (Title, UPPER, lower).
"""

import dataclasses
import re

import numpy as np

from dynabert_tf.data.tasks import Example

# NLTK's English stop words, as TinyBERT's script lists them: never replaced.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
yourselves he him his himself she she's her hers herself it it's its itself they them their
theirs themselves what which who whom this that that'll these those am is are was were be
been being have has had having do does did doing a an the and but if or because as until
while of at by for with about against between into through during before after above below
to from up down in out on off over under again further then once here there when where why
how all any both each few more most other some such no nor not only own same so than too
very s t can will just don don't should should've now d ll m o re ve y ain aren aren't
couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma
mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren
weren't won won't wouldn wouldn't 's 're""".split())
# Words as BERT's basic tokenizer sees them: runs of word characters, single punctuation.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_LETTERS = re.compile(r"[A-Za-z]+")
_NEIGHBOUR_CHUNK = 1024  # query words per matmul with the candidate pool


def is_replaceable(word):
    """Whether TinyBERT would replace `word`: letters only, not a stop word."""
    return bool(_LETTERS.fullmatch(word)) and word.lower() not in STOP_WORDS


def tokens_of(text):
    """[(start, end)] character spans of `text`'s words and punctuation marks."""
    return [match.span() for match in _TOKEN.finditer(text)]


def match_case(word, candidate):
    """`candidate` in `word`'s case pattern: Title, UPPER (two letters or more) or as is."""
    if len(word) > 1 and word.isupper():
        return candidate.upper()
    if word[:1].isupper():
        return candidate[:1].upper() + candidate[1:]
    return candidate


def nearest_neighbours(queries, pool, k, exclude=None, chunk=_NEIGHBOUR_CHUNK):
    """Indices of the `k` rows of `pool` of highest cosine with each query, best first.

    Args:
      queries: float [n, dim]; pool: float [size, dim] (rows of zero norm never win).
      exclude: optional int [n], a pool row each query may not return (-1: none).
    Returns:
      int [n, min(k, size)]; ties go to the lower pool index.
    """
    pool = _unit_rows(pool)
    k = min(k, len(pool))
    result = np.zeros((len(queries), k), np.int64)
    for start in range(0, len(queries), chunk):
        scores = _unit_rows(queries[start:start + chunk]) @ pool.T   # [chunk, size]
        if exclude is not None:
            rows = np.arange(len(scores))
            skip = np.asarray(exclude[start:start + chunk])
            scores[rows[skip >= 0], skip[skip >= 0]] = -np.inf
        result[start:start + chunk] = _top_k(scores, k)
    return result


def _unit_rows(matrix):
    matrix = np.asarray(matrix, np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def _top_k(scores, k):
    """int [n, k]: columns of the k highest scores of each row, best first, ties by index."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.arange(len(scores))[:, None]
    order = np.lexsort((part, -scores[rows, part]), axis=1)
    return part[rows, order]


class CandidateFinder:
    """The K candidates of every replaceable word of a batch of sentences.

    Args:
      vocabulary: list of str, the WordPiece vocabulary (line i = id i).
      embeddings: float [vocab_size, dim], the model's input token embeddings.
      tokenize: callable, list of str -> list of lists of int word-piece ids (no specials).
      num_candidates: K.
      mlm: optional callable (token_ids, segment_ids, padding_mask: int32 [n, length];
        positions: int [n]) -> float logits [n, vocab_size] at each row's position.
      mlm_batch_size, mlm_max_length: masked inputs per `mlm` call and their longest length.
    """

    def __init__(self, vocabulary, embeddings, tokenize, num_candidates, mlm=None,
                 mlm_batch_size=64, mlm_max_length=128):
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be at least 1, got {num_candidates}")
        self.vocabulary = list(vocabulary)
        self.embeddings = np.asarray(embeddings, np.float32)
        if len(self.embeddings) < len(self.vocabulary):
            raise ValueError(f"{len(self.vocabulary)} vocabulary entries but only "
                             f"{len(self.embeddings)} embedding rows")
        self.tokenize, self.num_candidates, self.mlm = tokenize, num_candidates, mlm
        self.mlm_batch_size, self.mlm_max_length = mlm_batch_size, mlm_max_length
        self.pool_ids = np.array([i for i, token in enumerate(self.vocabulary)
                                  if is_replaceable(token)], np.int64)
        if not len(self.pool_ids):
            raise ValueError("the vocabulary holds no whole-word entries to replace words with")
        self._pool_index = {int(token_id): i for i, token_id in enumerate(self.pool_ids)}
        self._ids = {token: i for i, token in enumerate(self.vocabulary)}
        self.unk_id = self._ids.get("[UNK]", -1)
        self._pieces, self._by_embedding = {}, {}

    @property
    def source(self):
        """'mlm' or 'embedding': where a one-piece word's candidates come from."""
        return "mlm" if self.mlm is not None else "embedding"

    def pieces(self, words):
        """{word: tuple of word-piece ids} for `words` (tokenized once, then cached)."""
        new = sorted({w for w in words if w not in self._pieces})
        if new:
            self._pieces.update(zip(new, map(tuple, self.tokenize(new))))
        return {word: self._pieces[word] for word in words}

    def embedding_candidates(self, words):
        """{word: [candidate tokens]} by cosine of the mean embedding of the word's pieces
        over the whole-word entries, the word's own entry excluded; [] for a word with
        [UNK] or no pieces."""
        new = sorted({w for w in words if w not in self._by_embedding})
        pieces = self.pieces(new)
        known = [w for w in new if pieces[w] and self.unk_id not in pieces[w]]
        self._by_embedding.update({w: [] for w in new})
        if known:
            queries = np.stack([self.embeddings[list(pieces[w])].mean(axis=0) for w in known])
            exclude = np.array([self._pool_index.get(pieces[w][0], -1) if len(pieces[w]) == 1
                                else -1 for w in known])
            best = nearest_neighbours(queries, self.embeddings[self.pool_ids],
                                      self.num_candidates, exclude)
            for word, row in zip(known, best):
                self._by_embedding[word] = [self.vocabulary[self.pool_ids[j]] for j in row]
        return {word: self._by_embedding[word] for word in words}

    def sentence_candidates(self, texts):
        """For each text, [(start, end, [candidates])] of its replaceable words that have
        candidates, in text order."""
        spans = [[(s, e) for s, e in tokens_of(text)] for text in texts]
        words = {text[s:e] for text, text_spans in zip(texts, spans) for s, e in text_spans}
        by_embedding = self.embedding_candidates(sorted(w for w in words if is_replaceable(w)))
        by_mlm = ({} if self.mlm is None else
                  self._mlm_candidates(texts, spans, self.pieces(words)))
        result = []
        for t, (text, text_spans) in enumerate(zip(texts, spans)):
            found = []
            for w, (s, e) in enumerate(text_spans):
                word = text[s:e]
                if is_replaceable(word):
                    candidates = by_mlm.get((t, w), by_embedding[word])
                    if candidates:
                        found.append((s, e, [match_case(word, c) for c in candidates]))
            result.append(found)
        return result

    def _mlm_candidates(self, texts, spans, pieces):
        """{(text index, word index): top-K whole words} of every one-piece replaceable word
        whose [MASK] fits in `mlm_max_length` tokens; others fall back to embeddings."""
        cls_id, sep_id, mask_id = (self._ids[t] for t in ("[CLS]", "[SEP]", "[MASK]"))
        rows, keys, originals = [], [], []
        for t, (text, text_spans) in enumerate(zip(texts, spans)):
            sentence = [pieces[text[s:e]] for s, e in text_spans]
            flat = [p for word_pieces in sentence for p in word_pieces]
            offset = 1  # [CLS]
            for w, word_pieces in enumerate(sentence):
                word = text[text_spans[w][0]:text_spans[w][1]]
                if (is_replaceable(word) and len(word_pieces) == 1
                        and word_pieces[0] != self.unk_id and offset < self.mlm_max_length - 1):
                    masked = list(flat)
                    masked[offset - 1] = mask_id
                    tokens = [cls_id, *masked, sep_id]
                    second = [*flat, sep_id][:max(0, self.mlm_max_length - len(tokens))]
                    tokens = (tokens + second)[:self.mlm_max_length]
                    rows.append((tokens, len(masked) + 2, offset))
                    keys.append((t, w))
                    originals.append(word_pieces[0])
                offset += len(word_pieces)
        found = {}
        for start in range(0, len(rows), self.mlm_batch_size):
            batch = rows[start:start + self.mlm_batch_size]
            length = max(len(tokens) for tokens, _, _ in batch)
            token_ids = np.zeros((len(batch), length), np.int32)
            segment_ids = np.zeros_like(token_ids)
            padding_mask = np.zeros_like(token_ids)
            for i, (tokens, first_length, _) in enumerate(batch):
                token_ids[i, :len(tokens)] = tokens
                segment_ids[i, first_length:len(tokens)] = 1
                padding_mask[i, :len(tokens)] = 1
            positions = np.array([position for _, _, position in batch], np.int32)
            logits = np.asarray(self.mlm(token_ids, segment_ids, padding_mask, positions),
                                np.float32)[:, self.pool_ids]
            own = np.array([self._pool_index.get(o, -1) for o in
                            originals[start:start + len(batch)]])
            logits[np.arange(len(batch))[own >= 0], own[own >= 0]] = -np.inf
            best = _top_k(logits, min(self.num_candidates, len(self.pool_ids)))
            for key, row in zip(keys[start:start + len(batch)], best):
                found[key] = [self.vocabulary[self.pool_ids[j]] for j in row]
        return found


@dataclasses.dataclass
class AugmentResult:
    """What `Augmenter.augment` made of a run of examples.

    examples: the kept copies, [(index of the original example, Example)], in order.
    eligible: word slots that could be replaced, summed over every drawn copy.
    replaced: of those, the slots replaced (replaced / eligible estimates replace_prob).
    """

    examples: list
    eligible: int = 0
    replaced: int = 0


class Augmenter:
    """`copies` augmented versions of each example (module doc), deterministic by seed."""

    def __init__(self, finder, replace_prob, copies):
        if not 0 < replace_prob <= 1:
            raise ValueError(f"replace_prob must be in (0, 1], got {replace_prob}")
        if copies < 1:
            raise ValueError(f"copies must be at least 1, got {copies}")
        self.finder, self.replace_prob, self.copies = finder, replace_prob, copies

    def augment(self, examples, seed, first_index=0):
        """Augments `examples`, the one at position j being example `first_index + j` of its
        split (the index seeds its draws). Returns `AugmentResult`."""
        pairs = examples[0].text_b is not None if examples else False
        texts = [e.text_a for e in examples] + ([e.text_b for e in examples] if pairs else [])
        candidates = self.finder.sentence_candidates(texts)
        result = AugmentResult([])
        for j, example in enumerate(examples):
            index = first_index + j
            slots = [candidates[j]] + ([candidates[len(examples) + j]] if pairs else [])
            copies, replaced = self.draw_copies(example, slots, seed, index)
            result.eligible += self.copies * sum(len(s) for s in slots)
            result.replaced += replaced
            seen = {(example.text_a, example.text_b)}
            for copy in copies:
                if (copy.text_a, copy.text_b) not in seen:
                    seen.add((copy.text_a, copy.text_b))
                    result.examples.append((index, copy))
        return result

    def draw_copies(self, example, slots, seed, index):
        """All `copies` versions of one example, before duplicates are dropped.

        Args:
          slots: per text of the example, [(start, end, [candidates])].
        Returns:
          (list of `copies` Examples, number of word slots replaced over them).
        """
        rng = np.random.default_rng([seed, index])
        sizes = np.array([len(c) for text_slots in slots for _, _, c in text_slots])
        replace = rng.random((self.copies, len(sizes))) < self.replace_prob
        choice = np.floor(rng.random((self.copies, len(sizes))) * sizes).astype(np.int64)
        texts = [example.text_a, example.text_b]
        copies = []
        for n in range(self.copies):
            new_texts, column = [], 0
            for text, text_slots in zip(texts, slots):
                pieces, last = [], 0
                for start, end, options in text_slots:
                    if replace[n, column]:
                        pieces += [text[last:start], options[choice[n, column]]]
                        last = end
                    column += 1
                new_texts.append("".join(pieces) + text[last:])
            copies.append(Example(new_texts[0], new_texts[1] if len(slots) > 1 else None,
                                  example.label))
        return copies, int(replace.sum())
