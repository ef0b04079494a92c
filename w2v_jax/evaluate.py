"""Intrinsic evaluation of word vectors: analogies, word-pair similarity, nearest neighbours.

Every function is pure and takes `words` (list[str], most frequent first) and `vectors` ([V, D]);
vectors are evaluated in float32, as gensim does. The numbers reproduce gensim 4.x's
`KeyedVectors.evaluate_word_analogies` and `evaluate_word_pairs` on the same vectors:

* The vocabulary is the first `restrict_vocab` words; with `case_insensitive` words are compared
  upper-cased and a folded word stands for its first (most frequent) spelling.
* Questions or pairs with a word outside that vocabulary are skipped and counted.
* 3CosAdd (Mikolov et al. 2013) answers a:b :: c:? with argmax_w cos(w, m), where m is the unit
  mean of the unit vectors u_b + u_c - u_a, over the vocabulary minus a, b and c.
  3CosMul (Levy & Goldberg 2014, eq. 4) answers argmax_w p(w,b) p(w,c) / (p(w,a) + eps) with
  p = (cos + 1) / 2 (their footnote 7) and eps = 1e-6 as in gensim's `most_similar_cosmul`
  (the paper uses 1e-3). As in gensim, the answer is the first of the top 5 candidates
  that is not a spelling of a question word. Unlike gensim's `most_similar_cosmul`, which
  ignores `restrict_vocab`, candidates here are the first `restrict_vocab` words for both methods.

Analogies are solved in batches (one matmul per chunk of questions), not question by question.
A float32 matmul sums in a different order than gensim's per-question matrix-vector product, so
scores differ in the last bits. Wherever that could change the answer (the two best scores lie
within a rounding-error bound of each other, or the best is a spelling of a question word), the
question is re-solved exactly the way gensim solves it, so the counts agree with gensim's.
"""
import os
from pathlib import Path

import numpy as np

from w2v_jax.errors import W2VError

DATA_DIR = Path(__file__).parent / "data"
ANALOGY_PATH = DATA_DIR / "questions-words.txt"  # Google analogy set, 19,544 questions
WORDSIM_PATH = DATA_DIR / "wordsim353.tsv"  # WordSim-353, 353 pairs
_CHUNK = 64  # questions per batch: [64, 30000] float32 scores (7.7 MB) stay in cache
_COSMUL_EPS = np.float32(1e-6)


def _table(words, vectors):
  """Checks the pair and returns (list of words, C-contiguous float32 [V, D] array)."""
  vectors = np.ascontiguousarray(np.asarray(vectors), dtype=np.float32)
  if vectors.ndim != 2 or vectors.shape[0] != len(words):
    raise W2VError(
        f"expected vectors of shape [len(words), D] = [{len(words)}, D], got {vectors.shape}")
  return list(words), vectors


def _vocab(words, limit, case_insensitive):
  """gensim's `ok_vocab`: folded word -> index of its first spelling among the first `limit` words.

  Also returns canon [min(V, limit)]: canon[i] is the index that word i's folded form maps to.
  """
  limit = len(words) if limit is None else limit
  index, canon = {}, np.empty(min(len(words), limit), np.int64)
  for i, word in enumerate(words[:limit]):
    canon[i] = index.setdefault(word.upper() if case_insensitive else word, i)
  return index, canon


def _open(path, default, what):
  path = Path(default if path is None else os.fspath(path))
  if not path.is_file():
    raise W2VError(f"{what} file not found: {path}; pass an existing file, or path=None for the bundled one")
  return path


def _read_analogies(path, case_insensitive):
  """Sections [(name, [(a, b, c, expected)])], parsed like gensim (lines not of 4 words are skipped)."""
  sections = []
  with open(path, encoding="utf-8") as f:
    for line_no, line in enumerate(f, 1):
      if line.startswith(": "):
        sections.append((line.lstrip(": ").strip(), []))
        continue
      quad = line.upper().split() if case_insensitive else line.split()
      if len(quad) != 4:
        continue
      if not sections:
        raise W2VError(f"{path}:{line_no}: question before the first ': section' header line")
      sections[-1][1].append(quad)
  if not sections:
    raise W2VError(f"{path}: no ': section' header found; is this a word-analogy file?")
  return sections


def _gensim_pick(scores, question, canon, n_excluded):
  """gensim's answer from one row of scores: its top-k, minus the question's rows, then of the top 5
  the first that is not a question word (else the 5th). Returns a canonical index, -1 for none."""
  x, top = -scores, 5 + n_excluded
  if top >= x.size:
    best = np.argsort(x)[:top]
  else:
    best = np.argpartition(x, top)[:top]
    best = best.take(np.argsort(x.take(best)))
  predicted = -1
  for i in [i for i in best if i not in question][:5]:
    predicted = canon[i]
    if predicted not in question:
      break
  return predicted


def _gensim_mean(units, a, b, c):
  """gensim's query for 3CosAdd, [Q, D]: unit mean of u_b + u_c - u_a, with its float ops in its order."""
  mean = np.zeros(units[b].shape, np.float32)
  mean += units[b]
  mean += units[c]
  mean -= units[a]
  mean = mean.astype(np.float64) / 3.0  # gensim divides by a float64 total weight
  norm = np.sqrt(np.sum(mean * mean, axis=1, keepdims=True))
  return np.where(norm > 0, mean * (1.0 / np.where(norm > 0, norm, 1.0)), mean).astype(np.float32)


def _solve(table, norms, units, canon, quads, method):
  """Canonical index of the predicted word for each question [Q, 4] (a, b, c, expected).

  Batched: cos(w, x) [X, R] is computed once for each distinct question word x. 3CosAdd ranks
  w by cos(w,b) + cos(w,c) - cos(w,a), which is gensim's cos(w, m) times 1 / |u_b + u_c - u_a|
  (per question, so the ranking is the same); 3CosMul combines the p = (cos + 1) / 2 rows.
  A question is re-solved with gensim's own arithmetic when the best two scores are closer
  than a bound on the float32 rounding of both computations, or the best is a question word.
  """
  uniq, inverse = np.unique(quads[:, :3], return_inverse=True)
  qa, qb, qc = inverse.reshape(-1, 3).T  # rows of cos for a, b and c
  cos = (units[uniq] @ table.T) / norms  # [X, R], gensim's dot(vectors, u_x) / norms
  # One cosine is off by at most (D + 2) float32 roundings, here and in gensim; 4x that is safe.
  gamma = 4.0 * (table.shape[1] + 2) * 2.0**-24
  if method == "3cosadd":
    raw = units[uniq[qb]] + units[uniq[qc]] - units[uniq[qa]]
    inv_len = 1.0 / np.maximum(np.linalg.norm(raw.astype(np.float64), axis=1), 1e-30)
  else:
    p = (1 + cos) / 2
  pred = np.empty(len(quads), np.int64)
  for lo in range(0, len(quads), _CHUNK):
    rows = np.arange(lo, min(lo + _CHUNK, len(quads)))
    if method == "3cosadd":
      s = cos[qb[rows]]  # [Q, R]
      s += cos[qc[rows]]
      s -= cos[qa[rows]]
    else:
      s = p[qb[rows]]
      s *= p[qc[rows]]
      s /= p[qa[rows]] + _COSMUL_EPS
    r = np.arange(len(rows))
    for col in range(3):
      s[r, quads[rows, col]] = -np.inf
    j1 = np.argmax(s, axis=1)
    s1 = s[r, j1]
    s[r, j1] = -np.inf
    j2 = np.argmax(s, axis=1)
    s2 = s[r, j2]
    if method == "3cosadd":  # in gensim's scale the gap is (s1 - s2) * inv_len
      gap, margin = (s1 - s2) * inv_len[rows], gamma * (3 * inv_len[rows] + 1)
    else:  # relative rounding error of p_b p_c / (p_a + eps), for both candidates
      gap = s1 - s2
      margin = sum(sk * (gamma * (1 / p[qb[rows], j] + 1 / p[qc[rows], j] + 1 / (p[qa[rows], j] + _COSMUL_EPS))
                         + 8 * 2.0**-24) for sk, j in ((s1, j1), (s2, j2)))
    pred[rows] = canon[j1]
    redo = rows[~(gap > margin) | np.any(canon[j1][:, None] == quads[rows, :3], axis=1)]
    if method == "3cosadd" and len(redo):
      mean = _gensim_mean(units, *quads[redo, :3].T)
    for n, q in enumerate(redo):  # gensim's arithmetic: one matrix-vector product per question
      question = quads[q, :3].tolist()
      if method == "3cosadd":
        pred[q] = _gensim_pick(np.dot(table, mean[n]) / norms, question, canon, 3)
      else:
        pb, pc, pa = ((1 + np.dot(table, units[quads[q, i]]) / norms) / 2 for i in (1, 2, 0))
        pred[q] = _gensim_pick(pb * pc / (pa + _COSMUL_EPS), question, canon, len(set(question)))
  return pred


def analogy(words, vectors, path=None, restrict_vocab=30000, method="3cosadd", case_insensitive=True):
  """Accuracy on a word-analogy set (default: the bundled Google set), as gensim computes it.

  Args:
    words: the vocabulary, most frequent first.
    vectors: [V, D] word vectors.
    path: analogy file (": section" headers, then "a b c expected" lines); None for the bundled one.
    restrict_vocab: only the first `restrict_vocab` words are vocabulary and candidate answers.
    method: "3cosadd" (gensim's `evaluate_word_analogies`) or "3cosmul".
    case_insensitive: compare upper-cased words, as gensim does by default.

  Returns:
    dict with "accuracy" (over all answered questions), "semantic" and "syntactic" (sections whose
    name starts with "gram" are syntactic), "sections" (list of {section, correct, incorrect,
    accuracy} in file order), "n_correct", "n_total" (questions answered = correct + incorrect)
    and "n_skipped" (questions with a word outside the vocabulary). An accuracy over no
    questions is 0.0, as in gensim.
  """
  if method not in ("3cosadd", "3cosmul"):
    raise W2VError(f"unknown analogy method {method!r}; use '3cosadd' or '3cosmul'")
  words, vectors = _table(words, vectors)
  index, canon = _vocab(words, restrict_vocab, case_insensitive)
  table = vectors[:len(canon)]
  norms = np.linalg.norm(table, axis=1)
  with np.errstate(divide="ignore", invalid="ignore"):
    units = table / norms[:, None]
    results, skipped = [], 0
    for name, questions in _read_analogies(_open(path, ANALOGY_PATH, "analogy"), case_insensitive):
      known = [[index[w] for w in quad] for quad in questions if all(w in index for w in quad)]
      skipped += len(questions) - len(known)
      quads = np.array(known, np.int64).reshape(-1, 4)
      correct = int(np.sum(_solve(table, norms, units, canon, quads, method) == quads[:, 3])) if len(quads) else 0
      results.append(dict(section=name, correct=correct, incorrect=len(quads) - correct))

  def acc(sections):
    right, total = sum(s["correct"] for s in sections), sum(s["correct"] + s["incorrect"] for s in sections)
    return right / total if total else 0.0, right, total

  for s in results:
    s["accuracy"] = acc([s])[0]
  accuracy, n_correct, n_total = acc(results)
  return dict(
      accuracy=accuracy,
      semantic=acc([s for s in results if not s["section"].startswith("gram")])[0],
      syntactic=acc([s for s in results if s["section"].startswith("gram")])[0],
      sections=results, n_correct=n_correct, n_total=n_total, n_skipped=skipped)


def rankdata(x):
  """Ranks 1..n of x [n], ties given the average of the ranks they span (scipy's "average")."""
  x = np.asarray(x)
  order = np.argsort(x, kind="stable")
  xs = x[order]
  new = np.r_[True, xs[1:] != xs[:-1]]
  group = np.cumsum(new) - 1  # tie group of each sorted element
  bounds = np.r_[np.flatnonzero(new), len(x)]  # sorted positions where groups start, then n
  ranks = np.empty(len(x), np.float64)
  ranks[order] = 0.5 * (bounds[group] + bounds[group + 1] + 1)
  return ranks


def pearson(x, y):
  """Pearson's r of x [n] and y [n], in float64."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  dx, dy = x - x.mean(), y - y.mean()
  return float(np.clip(np.dot(dx, dy) / np.sqrt(np.dot(dx, dx) * np.dot(dy, dy)), -1.0, 1.0))


def spearman(x, y):
  """Spearman's rho of x [n] and y [n]: Pearson's r of their average ranks."""
  return pearson(rankdata(x), rankdata(y))


def word_similarity(words, vectors, path=None, case_insensitive=True, restrict_vocab=300000):
  """Correlation of cosine similarity with human judgements (default: the bundled WordSim-353).

  Args:
    words: the vocabulary, most frequent first.
    vectors: [V, D] word vectors.
    path: tab-separated "word1 word2 score" lines, "#" comments; None for the bundled WS-353.
    case_insensitive: compare upper-cased words, as gensim does by default.
    restrict_vocab: only the first `restrict_vocab` words count as known.

  Returns:
    dict with "spearman" and "pearson" (over pairs with both words known), "n_pairs" (those pairs)
    and "oov_rate": the FRACTION of valid pairs skipped for an unknown word (gensim reports the
    same number as a percentage).
  """
  words, vectors = _table(words, vectors)
  index, _ = _vocab(words, restrict_vocab, case_insensitive)
  path = _open(path, WORDSIM_PATH, "word-pair")
  gold, model, oov = [], [], 0
  with open(path, encoding="utf-8") as f:
    for line in f:  # parsed as gensim does: comments and lines without 3 fields or a number skipped
      parts = (line.upper() if case_insensitive else line).split("\t")
      if line.startswith("#") or len(parts) != 3:
        continue
      try:
        score = float(parts[2])
      except ValueError:
        continue
      if parts[0] not in index or parts[1] not in index:
        oov += 1
        continue
      u, v = (vectors[index[w]] for w in parts[:2])  # gensim: dot of unitvec()s, scaled in float64
      gold.append(score)
      model.append(np.dot((u * (1.0 / np.linalg.norm(u.astype(np.float64)))).astype(np.float32),
                          (v * (1.0 / np.linalg.norm(v.astype(np.float64)))).astype(np.float32)))
  if not gold and not oov:
    raise W2VError(f"{path}: no valid 'word<TAB>word<TAB>score' line; check the file")
  if not gold:  # a small vocabulary: nothing to correlate, which is a result, not an error
    return dict(spearman=float("nan"), pearson=float("nan"), oov_rate=1.0, n_pairs=0)
  return dict(spearman=spearman(gold, model), pearson=pearson(gold, model),
              oov_rate=oov / (len(gold) + oov), n_pairs=len(gold))


def nearest(words, vectors, query, k=10):
  """The k words with the highest cosine to `query`, itself excluded: [(word, cosine)], best first.

  Ties go to the more frequent (earlier) word; a zero vector has cosine 0 with everything.
  """
  words, vectors = _table(words, vectors)
  try:
    i = words.index(query)
  except ValueError:
    raise W2VError(f"{query!r} is not in the vocabulary; pick a word that is") from None
  norms = np.linalg.norm(vectors, axis=1)
  with np.errstate(divide="ignore", invalid="ignore"):
    cos = np.nan_to_num((vectors @ vectors[i]) / (norms * norms[i]), nan=0.0, posinf=0.0, neginf=0.0)
  cos[i] = -np.inf
  best = np.argsort(-cos, kind="stable")[:min(k, len(words) - 1)]
  return [(words[j], float(cos[j])) for j in best]
