"""The vocabulary: word counts cut by `min_count` and `max_vocab_size`, in a fixed order, saved as TSV."""
import dataclasses
import hashlib
import os
from typing import Mapping

import numpy as np

from w2v_jax.atomic import write_atomic
from w2v_jax.errors import W2VError


@dataclasses.dataclass(frozen=True, eq=False)
class Vocab:
  """Words in id order with their corpus counts; `index` maps a word to its id."""
  words: list[str]
  counts: np.ndarray  # int64 [V]
  index: dict[str, int] = dataclasses.field(init=False, repr=False)

  def __post_init__(self):
    counts = np.asarray(self.counts, dtype=np.int64)
    if counts.shape != (len(self.words),):
      raise W2VError(f'vocabulary has {len(self.words)} words but {counts.size} counts; they must match')
    if counts.size and counts.min() < 1:
      raise W2VError('vocabulary counts must be >= 1; remove the words that never occur')
    object.__setattr__(self, 'counts', counts)
    object.__setattr__(self, 'index', {w: i for i, w in enumerate(self.words)})
    if len(self.index) != len(self.words):
      raise W2VError('vocabulary lists a word twice; each word must appear once')

  def __len__(self) -> int:
    return len(self.words)

  @property
  def total(self) -> int:
    """T, the number of corpus tokens that are in the vocabulary (word2vec.c's train_words)."""
    return int(self.counts.sum())

  @classmethod
  def from_counts(cls, counts: Mapping[str, int], min_count: int = 5,
                  max_vocab_size: int | None = None) -> 'Vocab':
    """Keeps words seen >= min_count times, the max_vocab_size most frequent; count desc, ties by word."""
    check_vocab_settings(min_count, max_vocab_size)
    if not counts:
      raise W2VError('the corpus is empty: it has no words; give a file with text in it')
    kept = [(w, c) for w, c in counts.items() if c >= min_count]
    if not kept:
      top = max(counts.values())
      raise W2VError(f'every word occurs fewer than min_count={min_count} times (the most frequent occurs '
                     f'{top} times); lower --min_count to {top} or less, or give a larger corpus')
    # The sort makes ids deterministic: word2vec.c sorts by count only, so its tie order is hash order.
    kept.sort(key=lambda wc: (-wc[1], wc[0]))
    if max_vocab_size is not None:
      kept = kept[:max_vocab_size]
    return cls([w for w, _ in kept], np.array([c for _, c in kept], dtype=np.int64))

  def save(self, path: str | os.PathLike) -> None:
    """Writes one 'word<TAB>count' line per word, in id order, atomically (temporary file + rename)."""
    text = ''.join(f'{w}\t{c}\n' for w, c in zip(self.words, self.counts.tolist()))
    write_atomic(path, lambda f: f.write(text.encode('utf-8')))

  @classmethod
  def load(cls, path: str | os.PathLike) -> 'Vocab':
    """Reads a file written by `save`; line order gives the ids."""
    words, counts = [], []
    try:
      with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
          word, tab, count = line.rstrip('\n').partition('\t')
          if not tab or not word or not (count.isascii() and count.isdigit()):
            raise W2VError(f'{path}, line {n}: expected "word<TAB>count", got {line.rstrip()!r}; '
                           'fix the line or rebuild the vocabulary')
          words.append(word)
          counts.append(int(count))
    except FileNotFoundError:
      raise W2VError(f'vocabulary file not found: {path}; check the path') from None
    if not words:
      raise W2VError(f'vocabulary file {path} is empty; rebuild the vocabulary')
    return cls(words, np.array(counts, dtype=np.int64))

  def fingerprint(self) -> str:
    """A hash of words and counts, so a cache made for one vocabulary is never used with another."""
    h = hashlib.sha256()
    for w, c in zip(self.words, self.counts.tolist()):
      h.update(f'{w}\t{c}\n'.encode('utf-8'))
    return h.hexdigest()


def check_vocab_settings(min_count: int, max_vocab_size: int | None) -> None:
  """Raises W2VError for a min_count or max_vocab_size that cannot work."""
  if min_count < 1:
    raise W2VError(f'min_count must be >= 1, got {min_count}; use --min_count=1 to keep every word')
  if max_vocab_size is not None and max_vocab_size < 1:
    raise W2VError(f'max_vocab_size must be >= 1 or unset, got {max_vocab_size}')
