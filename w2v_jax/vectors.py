"""Word vectors from any word2vec file, queried the way gensim's KeyedVectors queries them.

    kv = vectors.load("vectors.bin")          # text or binary, from w2v_jax, word2vec.c, gensim, fastText
    kv.most_similar(["king", "woman"], negative=["man"], topn=5)
    kv.analogy("man", "king", "woman")        # man : king :: woman : ?  ->  "queen", with luck

Every query is one call into `w2v_jax.evaluate` (the same code that scores the benchmarks), on the
table and its row norms, which the object keeps:

* cosine(x, y) = x . y / (|x| |y|), in float32 like gensim; u_x = x / |x|.
* most_similar(P, N): the words w maximising cos(w, m), m = unit(sum_{p in P} u_p - sum_{n in N} u_n),
  the query words excluded. analogy(a, b, c) by 3CosAdd is most_similar([b, c], [a])[0].
* most_similar_cosmul(P, N): maximises prod_p p(w, p) / (prod_n p(w, n) + 1e-6), p = (1 + cos) / 2;
  analogy(a, b, c) by 3CosMul (Levy & Goldberg 2014) is most_similar_cosmul([b, c], [a])[0].
* doesnt_match(W): the word of W least similar (cosine) to the unit mean of W's unit vectors.

Words are matched exactly (case-sensitively), as gensim matches them; the benchmarks (`evaluate`)
fold case, as gensim's evaluate_* methods do. An unknown word is a W2VError that names it.

Beside a vectors.txt of a subword model (subword.py) lies subwords.npz; `load` then returns a
`SubwordVectors`, which gives a word outside the vocabulary its n-grams' mean, Σ_g z_g / |G| (gensim's
FastTextKeyedVectors.get_vector; the zero vector for a word without n-grams), and takes such words in every
query: they are looked up, never candidates (gensim's most_similar excludes only vocabulary words).
"""
import os
from pathlib import Path

import numpy as np

import w2v_jax.evaluate as evaluate
import w2v_jax.ngrams as ngrams
import w2v_jax.vectors_io as vectors_io
from w2v_jax.errors import W2VError

_METHODS = {"3cosadd": evaluate.most_similar, "3cosmul": evaluate.most_similar_cosmul}


class KeyedVectors:
  """A word list and its float32 vectors [V, D], most frequent first (the order of the file).

  Attributes:
    words: list[str] [V]; vectors: float32 [V, D]; path: the file it came from, or None.
  """

  def __init__(self, words, vectors, path=None):
    vectors = np.ascontiguousarray(np.asarray(vectors), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
      raise W2VError(f"expected vectors of shape [len(words), D] = [{len(words)}, D], got {vectors.shape}")
    self.words, self.vectors = list(words), vectors
    self.path = None if path is None else Path(os.fspath(path))
    self._index = evaluate.word_index(self.words)
    if len(self._index) != len(self.words):
      dup = next(w for i, w in enumerate(self.words) if self._index[w] != i)
      raise W2VError(f"word {dup!r} appears twice; each word needs one vector")
    self._norms = np.linalg.norm(self.vectors, axis=1)

  def __len__(self):
    return len(self.words)

  def __contains__(self, word):
    return word in self._index

  def __getitem__(self, word):
    """The vector [D] of `word` (W2VError if unknown)."""
    return self.vectors[self.index(word)]

  def __repr__(self):
    return f"KeyedVectors({len(self)} words x {self.dim} dims{'' if self.path is None else f' from {self.path}'})"

  @property
  def dim(self):
    return self.vectors.shape[1]

  def index(self, word):
    """The row of `word`; W2VError naming it if it is not in the vocabulary."""
    try:
      return self._index[word]
    except KeyError:
      raise W2VError(f"{word!r} is not in the vocabulary; pick a word that is") from None

  def _query(self):
    return dict(index=self._index, norms=self._norms)

  def _table(self, *queries, restrict_vocab=None):
    """(words, vectors, index and norms, restrict_vocab) for a query on `queries` (words or lists of
    words): this table; SubwordVectors appends the words outside the vocabulary."""
    return self.words, self.vectors, self._query(), restrict_vocab

  def most_similar(self, positive, negative=(), topn=10, restrict_vocab=None):
    """[(word, cosine)] of the `topn` words nearest to unit(sum u_positive - sum u_negative), best
    first, the query words excluded (gensim's most_similar). `positive`, `negative`: a word or a list
    of words; `restrict_vocab`: only the first N words are candidates; topn=None: every candidate."""
    words, vectors, query, r = self._table(positive, negative, restrict_vocab=restrict_vocab)
    return evaluate.most_similar(words, vectors, positive, negative, topn, r, **query)

  def most_similar_cosmul(self, positive, negative=(), topn=10, restrict_vocab=None):
    """[(word, score)] by gensim's most_similar_cosmul: score = prod_p p(w, p) / (prod_n p(w, n) + 1e-6),
    p = (1 + cos) / 2, the query words excluded."""
    words, vectors, query, r = self._table(positive, negative, restrict_vocab=restrict_vocab)
    return evaluate.most_similar_cosmul(words, vectors, positive, negative, topn, r, **query)

  def similarity(self, a, b):
    """cos(a, b), as gensim's similarity computes it."""
    words, vectors, query, _ = self._table(a, b)
    return evaluate.similarity(words, vectors, a, b, index=query["index"])

  def analogy(self, a, b, c, method="3cosadd", restrict_vocab=None):
    """a : b :: c : ?  The best candidate other than a, b, c: by 3CosAdd, argmax cos(w, unit(u_b + u_c -
    u_a)) (gensim's most_similar([b, c], [a])); by 3CosMul, argmax p(w,b) p(w,c) / (p(w,a) + 1e-6),
    p = (1 + cos) / 2 (gensim's most_similar_cosmul([b, c], [a]))."""
    if method not in _METHODS:
      raise W2VError(f"unknown analogy method {method!r}; use '3cosadd' or '3cosmul'")
    words, vectors, query, r = self._table(a, b, c, restrict_vocab=restrict_vocab)
    best = _METHODS[method](words, vectors, [b, c], [a], 1, r, **query)
    if not best:
      raise W2VError(f"no candidate answer: the vocabulary holds only the question words {a!r}, {b!r}, {c!r}")
    return best[0][0]

  def doesnt_match(self, words):
    """The word of `words` farthest (cosine) from the unit mean of their unit vectors (gensim's)."""
    table, vectors, query, _ = self._table(words)
    return evaluate.doesnt_match(table, vectors, words, **query)

  def evaluate_word_analogies(self, path=None, restrict_vocab=30000, method="3cosadd", case_insensitive=True):
    """`evaluate.analogy` on this table: gensim's evaluate_word_analogies numbers (default: the Google set)."""
    return evaluate.analogy(self.words, self.vectors, path=path, restrict_vocab=restrict_vocab, method=method,
                            case_insensitive=case_insensitive)

  def evaluate_word_pairs(self, path=None, restrict_vocab=300000, case_insensitive=True):
    """`evaluate.word_similarity` on this table: gensim's evaluate_word_pairs numbers (default: WS-353)."""
    return evaluate.word_similarity(self.words, self.vectors, path=path, case_insensitive=case_insensitive,
                                   restrict_vocab=restrict_vocab)

  def evaluate(self, restrict_vocab=30000):
    """`evaluate.all_benchmarks`: analogies by 3CosAdd and 3CosMul over the first `restrict_vocab`
    words, and every bundled word-pair set; `evaluate.headline` flattens the result."""
    return evaluate.all_benchmarks(self.words, self.vectors, restrict_vocab=restrict_vocab)


class SubwordVectors(KeyedVectors):
  """KeyedVectors of a subword model, with its n-gram bucket rows: words outside the vocabulary get vectors.

  Attributes (besides KeyedVectors'): buckets float32 [N, D], the n-gram rows z; min_n, max_n."""

  def __init__(self, words, vectors, buckets, min_n, max_n, path=None):
    super().__init__(words, vectors, path)
    self.buckets = np.ascontiguousarray(buckets, dtype=np.float32)
    self.min_n, self.max_n = int(min_n), int(max_n)
    if self.buckets.ndim != 2 or self.buckets.shape[1] != self.dim or len(self.buckets) == 0:
      raise W2VError(f"the n-gram rows have shape {self.buckets.shape}; expected [buckets, {self.dim}]")

  def __repr__(self):
    return super().__repr__()[:-1] + f", {len(self.buckets):,} n-gram buckets)"

  def __getitem__(self, word):
    """The vector [D] of `word`: its row in the vocabulary, else its n-grams' mean (zero if it has none)."""
    return self.vectors[self._index[word]] if word in self._index else self.ngram_vector(word)

  def ngram_vector(self, word):
    """Σ_g z_g / |G| over the n-grams of "<word>" (gensim's get_vector for a word it never saw)."""
    ids = ngrams.word_hashes(word, self.min_n, self.max_n, len(self.buckets))
    return self.buckets[ids].sum(axis=0) / max(len(ids), 1)

  def _table(self, *queries, restrict_vocab=None):
    new = [w for q in queries for w in ([q] if isinstance(q, str) else q) if w not in self._index]
    new = list(dict.fromkeys(new))
    if not new:
      return super()._table(restrict_vocab=restrict_vocab)
    extra = np.stack([self.ngram_vector(w) for w in new])
    words, vectors = self.words + new, np.concatenate([self.vectors, extra])
    index = dict(self._index, **{w: len(self.words) + i for i, w in enumerate(new)})
    norms = np.concatenate([self._norms, np.linalg.norm(extra, axis=1)])
    r = len(self.words) if restrict_vocab is None else min(restrict_vocab, len(self.words))
    return words, vectors, dict(index=index, norms=norms), r


def load(path, binary=None):
  """KeyedVectors from a word2vec text or binary file written by any tool (`vectors_io.load`); a
  SubwordVectors where subwords.npz (subword.SUBWORDS_FILE) lies beside it.

  binary: True or False to insist on a format; None (default) detects it. A malformed file (bad
  header, truncated, a row of the wrong length, a duplicate word, a word that is not UTF-8) is a
  one-line W2VError naming the file and the problem.
  """
  words, vectors = vectors_io.load(path, binary=binary)
  beside = Path(os.fspath(path)).with_name("subwords.npz")
  if not beside.is_file():
    return KeyedVectors(words, vectors, path)
  try:
    with np.load(beside) as z:
      return SubwordVectors(words, vectors, z["buckets"], int(z["min_n"]), int(z["max_n"]), path)
  except (OSError, ValueError, KeyError, EOFError) as e:
    raise W2VError(f"{beside}: not a subwords file w2v_jax can read ({type(e).__name__}: {e}); move it away "
                   "to load the vectors alone") from None
