"""fastText's character n-grams and their hash buckets, for a whole vocabulary at once (plain numpy).

A word w is read as the bytes of "<" + w + ">" in UTF-8. Its n-grams are the runs of n characters, for
n = min_n..max_n (fastText's and gensim's defaults: 3..6), in the order fastText's
Dictionary::computeSubwords makes them: by start character, then by length. A character is a UTF-8
sequence: a byte 10xxxxxx continues the character before it, so an n-gram never splits one. With
min_n = 1 the lone "<" and ">" are left out (fastText's `!(n == 1 && (i == 0 || j == word.size()))`).
The whole "<w>" is one of them when it has at most max_n characters, and an n-gram met twice in a word
counts twice.

Each n-gram goes to bucket FNV-1a(bytes) mod `buckets`, with fastText's 32-bit FNV-1a:

  h = 2166136261;  for each byte b:  h = (h XOR uint32(int8(b))) * 16777619  (mod 2^32)

The int8 is fastText's quirk (dictionary.cc's `h = h ^ uint32_t(int8_t(str[i]))`): a byte >= 0x80 is
sign-extended before the XOR, so a non-ASCII byte b XORs 0xFFFFFF00 | b, not b. This is not the FNV-1a
of the literature; gensim (`ft_hash_bytes`, `<np.int8_t>b`) reproduces it, and so do we, so the bucket
ids are gensim's `ft_ngram_hashes(word, min_n, max_n, buckets)` (tests/test_subword.py checks them on
real words, ASCII and not).

`vocab_hashes` hashes every word of a vocabulary in one vectorised pass, by byte offset inside the
n-grams (at most 4·max_n bytes), instead of a Python loop per word.
"""
import numpy as np

from w2v_jax.errors import W2VError

FNV_OFFSET, FNV_PRIME = 2166136261, 16777619
MIN_N, MAX_N, BUCKETS = 3, 6, 2_000_000   # fastText's and gensim's defaults


def check_settings(min_n: int, max_n: int, buckets: int) -> None:
  """W2VError naming the flag unless 1 <= min_n <= max_n and 1 <= buckets < 2^31 (ids are int32)."""
  if not 1 <= min_n <= max_n:
    raise W2VError(f"--min_n and --max_n must satisfy 1 <= min_n <= max_n, got {min_n} and {max_n}")
  if max_n > 64:
    raise W2VError(f"--max_n={max_n} is too large: at most 64 characters")
  if not 1 <= buckets < 2**31:
    raise W2VError(f"--buckets must be between 1 and {2**31 - 1:,}, got {buckets}")


def fnv1a(data: bytes) -> int:
  """fastText's 32-bit FNV-1a of `data`, with its int8 sign extension (module docstring)."""
  h = FNV_OFFSET
  for b in data:
    h = ((h ^ (b | 0xFFFFFF00 if b >= 0x80 else b)) * FNV_PRIME) & 0xFFFFFFFF
  return h


def vocab_hashes(words, min_n: int = MIN_N, max_n: int = MAX_N, buckets: int = BUCKETS
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Every word's n-gram buckets: (ids int64 [T], offsets int64 [V + 1]); word v's are
  ids[offsets[v]:offsets[v + 1]], in fastText's order (= gensim's ft_ngram_hashes(word, ...))."""
  check_settings(min_n, max_n, buckets)
  V = len(words)
  encoded = [("<" + w + ">").encode("utf-8") for w in words]
  lengths = np.fromiter((len(e) for e in encoded), np.int64, V)
  buf = np.frombuffer(b"".join(encoded), np.uint8)
  # each byte XORed as fastText does: uint32(int8(b))
  xor = np.where(buf >= 0x80, buf.astype(np.int64) | 0xFFFFFF00, buf.astype(np.int64))
  starts = np.flatnonzero((buf & 0xC0) != 0x80)              # [Nc] each character's first byte
  ends = np.append(starts[1:], buf.size)                     # its end (words are contiguous in buf)
  word_of = np.repeat(np.arange(V), lengths)[starts]         # [Nc] the word each character is in
  first_char = np.searchsorted(word_of, np.arange(V))        # [V] each word's first character
  last = np.append(first_char[1:], starts.size) - 1          # [V] and its last
  nc = starts.size
  h = np.full(nc, FNV_OFFSET, np.int64)                      # the n-gram starting at each character
  found_word, found_start, found_n, found_id = [], [], [], []
  for n in range(1, max_n + 1):
    k = np.arange(nc) + n - 1                                # the n-gram's last character
    alive = k < nc
    alive[alive] &= word_of[k[alive]] == word_of[alive]
    if not alive.any():
      break
    k = np.where(alive, k, 0)
    for b in range(4):                                       # that character's bytes, 1 to 4 of them
      pos = starts[k] + b
      more = alive & (pos < ends[k])
      if not more.any():
        break
      h = np.where(more, ((h ^ xor[np.where(more, pos, 0)]) * FNV_PRIME) & 0xFFFFFFFF, h)
    if n >= min_n:
      keep = alive.copy()
      if n == 1:                                             # fastText drops the lone "<" and ">"
        keep[first_char] = keep[last] = False
      where = np.flatnonzero(keep)
      found_word.append(word_of[where])
      found_start.append(where)
      found_n.append(np.full(where.size, n, np.int64))
      found_id.append(h[where] % buckets)
  if not found_word:
    return np.zeros(0, np.int64), np.zeros(V + 1, np.int64)
  word, start, n = (np.concatenate(x) for x in (found_word, found_start, found_n))
  order = np.lexsort((n, start))                             # by start character, then length (word follows)
  ids = np.concatenate(found_id)[order]
  offsets = np.zeros(V + 1, np.int64)
  np.cumsum(np.bincount(word, minlength=V), out=offsets[1:])
  return ids, offsets


def word_hashes(word: str, min_n: int = MIN_N, max_n: int = MAX_N, buckets: int = BUCKETS) -> np.ndarray:
  """One word's n-gram buckets, int64 [G]: vocab_hashes of [word]."""
  return vocab_hashes([word], min_n, max_n, buckets)[0]


def bag_table(ids: np.ndarray, offsets: np.ndarray, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
  """The padded bags of W_in rows: (rows int32 [V, G], weight float32 [V, G]).

  Word v's bag is its own row v (column 0) and its n-grams' rows V + bucket; G = 1 + the most n-grams of
  any word. Padding holds row v with weight 0, so every gathered id is valid."""
  V = int(vocab_size)
  counts = np.diff(offsets)
  G = 1 + int(counts.max(initial=0))
  if V + (int(ids.max()) + 1 if ids.size else 0) >= 2**31:
    raise W2VError(f"{V:,} words + the buckets overflow int32 row ids: lower --buckets")
  rows = np.repeat(np.arange(V, dtype=np.int32)[:, None], G, axis=1)
  weight = np.zeros((V, G), np.float32)
  weight[:, 0] = 1.0
  word = np.repeat(np.arange(V), counts)
  col = 1 + np.arange(ids.size) - np.repeat(offsets[:-1], counts)
  rows[word, col] = (V + ids).astype(np.int32)
  weight[word, col] = 1.0
  return rows, weight
