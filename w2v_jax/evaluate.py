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

Queries on one table (`most_similar`, `most_similar_cosmul`, `similarity`, `doesnt_match`, `nearest`)
follow gensim's KeyedVectors methods of those names, float op for float op, so a file gives gensim's
answers; `w2v_jax.vectors.KeyedVectors` wraps them. `all_benchmarks` runs every bundled set.

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
SIMLEX_PATH = DATA_DIR / "simlex999.txt"  # SimLex-999, 999 pairs
_SIMILARITY_SETS = {"ws353": WORDSIM_PATH, "simlex999": SIMLEX_PATH}
_CHUNK = 64  # questions per batch: [64, 30000] float32 scores (7.7 MB) stay in cache
_COSMUL_EPS = 1e-6  # a Python float, as in gensim: float32 scores stay float32


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


def _unit_mean(units, weights):
  """gensim's query vector for most_similar, [Q, D] float32, with its float ops in its order:
  unit(sum_k w_k u_k / sum_k |w_k|) of the unit rows units [Q, K, D] and weights [K]."""
  mean = np.zeros((units.shape[0], units.shape[2]), np.float32)
  for k, w in enumerate(weights):
    mean += w * units[:, k]
  mean = mean.astype(np.float64) / float(np.sum(np.abs(weights)))  # gensim divides by a float64 total
  norm = np.sqrt(np.sum(mean * mean, axis=1, keepdims=True))
  return np.where(norm > 0, mean * (1.0 / np.where(norm > 0, norm, 1.0)), mean).astype(np.float32)


def _cosmul(table, norms, pos_units, neg_units):
  """gensim's most_similar_cosmul scores [R]: prod_pos p / (prod_neg p + 1e-6), p = (1 + cos) / 2."""
  pos = [(1 + np.dot(table, u) / norms) / 2 for u in pos_units]
  neg = [(1 + np.dot(table, u) / norms) / 2 for u in neg_units]
  return np.prod(pos, axis=0) / (np.prod(neg, axis=0) + _COSMUL_EPS)


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
      mean = _unit_mean(units[quads[redo][:, [1, 2, 0]]], (1.0, 1.0, -1.0))  # b + c - a
    for n, q in enumerate(redo):  # gensim's arithmetic: one matrix-vector product per question
      question = quads[q, :3].tolist()
      if method == "3cosadd":
        pred[q] = _gensim_pick(np.dot(table, mean[n]) / norms, question, canon, 3)
      else:
        pred[q] = _gensim_pick(_cosmul(table, norms, units[quads[q, 1:3]], units[quads[q, :1]]),
                               question, canon, len(set(question)))
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
      gold.append(score)
      model.append(_pair_cosine(vectors[index[parts[0]]], vectors[index[parts[1]]]))
  if not gold and not oov:
    raise W2VError(f"{path}: no valid 'word<TAB>word<TAB>score' line; check the file")
  if not gold:  # a small vocabulary: nothing to correlate, which is a result, not an error
    return dict(spearman=float("nan"), pearson=float("nan"), oov_rate=1.0, n_pairs=0)
  return dict(spearman=spearman(gold, model), pearson=pearson(gold, model),
              oov_rate=oov / (len(gold) + oov), n_pairs=len(gold))


def word_similarity_sets():
  """The bundled word-pair sets, {name: path}, in report order: "ws353" (WordSim-353, relatedness)
  and "simlex999" (SimLex-999, similarity proper). Each path suits `word_similarity(path=...)`."""
  return dict(_SIMILARITY_SETS)


def all_benchmarks(words, vectors, restrict_vocab=30000, methods=("3cosadd", "3cosmul"),
                   pairs_restrict_vocab=300000):
  """Every bundled benchmark on one table, with gensim's defaults.

  Returns:
    {"analogy": {method: analogy(..., restrict_vocab, method)}, "similarity": {name: word_similarity(
    ..., path, restrict_vocab=pairs_restrict_vocab)}} over `methods` and `word_similarity_sets()`.
  """
  return dict(
      analogy={m: analogy(words, vectors, restrict_vocab=restrict_vocab, method=m) for m in methods},
      similarity={name: word_similarity(words, vectors, path=path, restrict_vocab=pairs_restrict_vocab)
                  for name, path in word_similarity_sets().items()})


def headline(report):
  """The flat numbers of an `all_benchmarks` report: "analogy_accuracy", "analogy_semantic" and
  "analogy_syntactic" (3CosAdd, the numbers the training summary reports), "analogy_<method>" for
  any other method run, and "<set>_spearman", "<set>_pearson", "<set>_oov_rate" for every word-pair
  set. A correlation over no pair is None (JSON null)."""
  out = {}
  for method, r in report["analogy"].items():
    if method == "3cosadd":
      out.update(analogy_accuracy=r["accuracy"], analogy_semantic=r["semantic"], analogy_syntactic=r["syntactic"])
    else:
      out[f"analogy_{method}"] = r["accuracy"]
  for name, r in report["similarity"].items():
    for key in ("spearman", "pearson", "oov_rate"):
      out[f"{name}_{key}"] = None if np.isnan(r[key]) else r[key]
  return out


# --- Queries on one table: gensim's KeyedVectors semantics ---------------------------------------


def _pair_cosine(u, v):
  """gensim's `similarity`: the dot of the float32 unit vectors, each scaled by 1 / |x| in float64;
  a zero vector stays zero (cosine 0)."""
  def unit(x):
    norm = np.linalg.norm(x.astype(np.float64))
    return (x * (1.0 / norm)).astype(np.float32) if norm > 0 else x
  return np.dot(unit(u), unit(v))


def word_index(words):
  """{word: row}, the first row of a word listed twice."""
  index = {}
  for i, word in enumerate(words):
    index.setdefault(word, i)
  return index


def _rows(index, query):
  """Rows of the query words (a word or a list of words); W2VError names an unknown one."""
  query = [query] if isinstance(query, str) else list(query)
  for word in query:
    if word not in index:
      raise W2VError(f"{word!r} is not in the vocabulary; pick a word that is")
  return [index[word] for word in query]


def _units(words, vectors, norms, rows):
  """The unit vectors [K, D] of `rows`, as gensim's get_vector(norm=True); W2VError for a zero one."""
  for i in rows:
    if norms[i] == 0:
      raise W2VError(f"{words[i]!r} has a zero vector: its cosine with anything is undefined")
  return vectors[rows] / norms[rows, None]


def _ranked(words, scores, exclude, topn):
  """[(word, score)] of the `topn` best scores (None: all), minus the rows `exclude`, best first;
  ties go to the earlier (more frequent) word, and NaN scores (zero vectors) rank last."""
  key = np.where(np.isnan(scores), -np.inf, scores)
  keep = np.ones(len(scores), bool)
  keep[list(exclude)] = False
  cand = np.flatnonzero(keep)
  n = len(cand) if topn is None else max(0, min(topn, len(cand)))
  if 0 < n < len(cand):  # every row scoring at least the n-th best: ties at the cut all stay
    kth = np.partition(key[cand], len(cand) - n)[len(cand) - n]
    cand = cand[key[cand] >= kth]
  best = cand[np.lexsort((cand, -key[cand]))][:n]
  return [(words[j], float(scores[j])) for j in best]


def _prepare(words, vectors, index, norms, restrict_vocab):
  """(words, float32 table, index, norms, candidate rows R) for the query functions below."""
  words, vectors = _table(words, vectors)
  index = word_index(words) if index is None else index
  norms = np.linalg.norm(vectors, axis=1) if norms is None else norms
  r = len(words) if restrict_vocab is None else min(restrict_vocab, len(words))
  return words, vectors, index, norms, r


def most_similar(words, vectors, positive, negative=(), topn=10, restrict_vocab=None, *, index=None, norms=None):
  """gensim's `most_similar`: the words w with the highest cos(w, m), the query words excluded.

  m = unit(sum_p u_p - sum_n u_n), u_x = x / |x| (the unit mean of the unit vectors, positive words
  weighted +1 and negative -1: 3CosAdd for positive=[b, c], negative=[a]); the score is
  cos(w, m) = w . m / |w|, computed in float32 exactly as gensim does, so a file gives gensim's list.

  Args:
    words, vectors: the table, most frequent first.
    positive: a word or a list of words; negative: a word or a list of words (default none).
    topn: how many to return (None: every candidate).
    restrict_vocab: only the first `restrict_vocab` words are candidates (None: all).
    index, norms: `word_index(words)` and the row norms, when the caller keeps them.

  Returns:
    [(word, cosine)], best first; ties go to the more frequent word. W2VError for an unknown word.
  """
  words, vectors, index, norms, r = _prepare(words, vectors, index, norms, restrict_vocab)
  pos, neg = _rows(index, positive), _rows(index, negative)
  rows = pos + neg
  if not rows:
    raise W2VError("most_similar needs at least one query word")
  mean = _unit_mean(_units(words, vectors, norms, rows)[None], [1.0] * len(pos) + [-1.0] * len(neg))[0]
  with np.errstate(divide="ignore", invalid="ignore"):
    scores = np.dot(vectors[:r], mean) / norms[:r]
  return _ranked(words, scores, [i for i in rows if i < r], topn)


def most_similar_cosmul(words, vectors, positive, negative=(), topn=10, restrict_vocab=None, *, index=None,
                        norms=None):
  """gensim's `most_similar_cosmul`: the words w with the highest
  prod_p p(w, p) / (prod_n p(w, n) + 1e-6), p = (cos + 1) / 2 (3CosMul of Levy & Goldberg 2014 for
  positive=[b, c], negative=[a]), the query words excluded. Arguments and result as `most_similar`,
  except that the scores are these products, not cosines. Unlike gensim, `restrict_vocab` is honoured.
  """
  words, vectors, index, norms, r = _prepare(words, vectors, index, norms, restrict_vocab)
  pos, neg = _rows(index, positive), _rows(index, negative)
  if not pos:
    raise W2VError("most_similar_cosmul needs at least one positive word")
  with np.errstate(divide="ignore", invalid="ignore"):
    scores = _cosmul(vectors[:r], norms[:r], _units(words, vectors, norms, pos), _units(words, vectors, norms, neg))
  return _ranked(words, scores, [i for i in pos + neg if i < r], topn)


def similarity(words, vectors, a, b, *, index=None):
  """gensim's `similarity`: cos(a, b) = u_a . u_b, as `word_similarity` scores a pair."""
  index = word_index(words) if index is None else index
  i, j = _rows(index, [a, b])
  return float(_pair_cosine(np.asarray(vectors[i], np.float32), np.asarray(vectors[j], np.float32)))


def doesnt_match(words, vectors, query, *, index=None, norms=None):
  """gensim's `doesnt_match`: of the query words, the one with the lowest cos(u_x, m), m the unit
  mean of their unit vectors (gensim skips unknown words; here they are a W2VError)."""
  words, vectors, index, norms, _ = _prepare(words, vectors, index, norms, None)
  rows = _rows(index, query)
  if not rows:
    raise W2VError("doesnt_match needs at least one word")
  units = _units(words, vectors, norms, rows)
  mean = _unit_mean(units[None], [1.0] * len(rows))[0]
  return words[rows[int(np.argmin(units @ mean))]]


def nearest(words, vectors, query, k=10):
  """The k words with the highest cosine to `query`, itself excluded: [(word, cosine)], best first.

  `most_similar(words, vectors, query, topn=k)`: ties go to the more frequent (earlier) word; a zero
  vector's cosine is undefined (NaN, as in gensim): as a candidate it ranks last, as the query it is
  a W2VError.
  """
  return most_similar(words, vectors, query, topn=k)
