"""Hierarchical softmax (w2v_jax/hsoftmax.py): word2vec.c's Huffman tree, the two models' closed forms and
training rules against jax.grad, and training on planted groups."""
import heapq

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from w2v_jax import api, engine, hsoftmax, losses, models, native, rewrites
from w2v_jax import step as step_lib
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, Params
from tests.helpers import awkward_batch, group_purity, planted_corpus, random_params

HS = ("cbow_hs", "sgram_hs")


# ----------------------------------------------------------------------------- the tree

def word2vec_c_tree(cn):
  """word2vec.c's CreateBinaryTree, transcribed line for line (vocab[a].cn = cn[a], sorted descending).

  Returns per word (code[:codelen], point[:codelen])."""
  vocab_size = len(cn)
  count = [0] * (vocab_size * 2 + 1)
  binary = [0] * (vocab_size * 2 + 1)
  parent_node = [0] * (vocab_size * 2 + 1)
  for a in range(vocab_size):
    count[a] = cn[a]
  for a in range(vocab_size, vocab_size * 2):
    count[a] = 1e15
  pos1 = vocab_size - 1
  pos2 = vocab_size
  for a in range(vocab_size - 1):
    if pos1 >= 0:
      if count[pos1] < count[pos2]:
        min1i = pos1
        pos1 -= 1
      else:
        min1i = pos2
        pos2 += 1
    else:
      min1i = pos2
      pos2 += 1
    if pos1 >= 0:
      if count[pos1] < count[pos2]:
        min2i = pos1
        pos1 -= 1
      else:
        min2i = pos2
        pos2 += 1
    else:
      min2i = pos2
      pos2 += 1
    count[vocab_size + a] = count[min1i] + count[min2i]
    parent_node[min1i] = vocab_size + a
    parent_node[min2i] = vocab_size + a
    binary[min2i] = 1
  words = []
  for a in range(vocab_size):
    b = a
    i = 0
    code, point = [], []
    while True:
      code.append(binary[b])
      point.append(b)
      i += 1
      b = parent_node[b]
      if b == vocab_size * 2 - 2:
        break
    codelen = i
    vcode = [0] * codelen
    vpoint = [0] * (codelen + 1)
    vpoint[0] = vocab_size - 2
    for b in range(codelen):
      vcode[i - b - 1] = code[b]
      vpoint[i - b] = point[b] - vocab_size
    words.append((vcode, vpoint[:codelen]))
  return words


def heap_huffman_cost(counts):
  """Σ_w count_w · len_w of an optimal prefix code: the sum of the merged weights (heapq Huffman)."""
  heap = [int(c) for c in counts]
  heapq.heapify(heap)
  cost = 0
  while len(heap) > 1:
    merged = heapq.heappop(heap) + heapq.heappop(heap)
    cost += merged
    heapq.heappush(heap, merged)
  return cost


def zipf_counts(V, seed=0):
  rng = np.random.default_rng(seed)
  return np.sort(rng.zipf(1.5, V).clip(max=10 ** 9))[::-1].astype(np.int64)   # many ties among the 1s


COUNT_VECTORS = [
    [7, 3],                                    # V = 2
    [1, 1],
    [5, 2, 1],                                 # V = 3
    [2, 1, 1],
    [4, 4, 4],
    [9, 8, 8, 5, 3, 3, 3, 2, 1, 1],            # V = 10, ties
    [1] * 10,
    [100, 50, 25, 12, 6, 3, 2, 1, 1, 1],
]


@pytest.mark.parametrize("counts", COUNT_VECTORS + [zipf_counts(1000), zipf_counts(1000, seed=1)],
                         ids=lambda c: f"V{len(c)}")
def test_tree_matches_word2vec_c(counts):
  counts = np.asarray(counts, np.int64)
  codes, points, lengths = hsoftmax.huffman_tree(counts)
  want = word2vec_c_tree(counts.tolist())
  assert codes.shape == points.shape == (len(counts), max(len(c) for c, _ in want))
  for w, (code, point) in enumerate(want):
    n = len(code)
    assert lengths[w] == n
    assert codes[w, :n].tolist() == code and points[w, :n].tolist() == point
    assert not codes[w, n:].any() and not points[w, n:].any()        # padding is zeros
  assert np.all((points >= 0) & (points <= len(counts) - 2))          # V − 1 inner nodes: W_out[:V−1]
  assert points[:, 0].tolist() == [len(counts) - 2] * len(counts)     # every path starts at the root
  # Kraft's equality (a full binary tree) and the Huffman optimum of the expected code length.
  assert np.sum(2.0 ** -lengths.astype(np.float64)) == 1.0
  assert int(np.sum(counts * lengths)) == heap_huffman_cost(counts)


def test_unsorted_counts_give_the_tree_of_the_sorted_vocabulary():
  rng = np.random.default_rng(3)
  counts = zipf_counts(300)
  perm = rng.permutation(len(counts))
  got = hsoftmax.huffman_tree(counts[perm])
  order = np.argsort(-counts[perm], kind="stable")
  want = hsoftmax.huffman_tree(counts[perm][order])
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g[order], w)
  assert int(np.sum(counts[perm] * got[2])) == heap_huffman_cost(counts)


def test_one_word_vocabulary_and_bad_counts():
  codes, points, lengths = hsoftmax.huffman_tree([5])
  assert lengths.tolist() == [0] and codes.shape == points.shape == (1, 1)
  for bad in ([], [3, -1], [[1, 2]], [1e16, 1]):
    with pytest.raises(W2VError):
      hsoftmax.huffman_tree(bad)


def test_models_walk_the_same_paths():
  """The models read each path by walking up the parent links: the same (node, bit) pairs, leaf first."""
  counts = zipf_counts(1000, seed=2)
  codes, points, lengths = hsoftmax.huffman_tree(counts)
  tree = hsoftmax.tree_for(counts)
  assert tree.L == codes.shape[1]
  words = jnp.arange(len(counts))
  got_points, got_labels, on_path = (np.asarray(a) for a in hsoftmax._path(tree, words, jnp.float64))
  np.testing.assert_array_equal(on_path.sum(axis=1), lengths)
  for w in range(len(counts)):
    n = lengths[w]
    np.testing.assert_array_equal(got_points[w, :n][::-1], points[w, :n])
    np.testing.assert_array_equal(1 - got_labels[w, :n][::-1], codes[w, :n])


def test_tree_is_built_once_per_vocabulary(monkeypatch):
  monkeypatch.setattr(hsoftmax, "_TREES", {})
  builds = []
  build = hsoftmax._build
  monkeypatch.setattr(hsoftmax, "_build", lambda c: builds.append(1) or build(c))
  counts = zipf_counts(50)
  a = models.get("sgram_hs").configure(counts=counts)
  b = models.get("cbow_hs").configure(counts=counts.copy())     # equal counts, another array
  assert len(builds) == 1 and a.row_grads is not None and b.row_grads is not None
  models.get("sgram_hs").configure(counts=counts[:-1])
  assert len(builds) == 2


def test_tree_build_is_fast_for_a_million_words():
  import time
  counts = zipf_counts(1_000_000)
  start = time.perf_counter()
  hsoftmax._build(counts)
  assert time.perf_counter() - start < 10.0     # about 0.5 s on an idle core


# ----------------------------------------------------------------------------- the losses

def _configured(name, V, **options):
  counts = np.sort(np.random.default_rng(V).integers(1, 50, V))[::-1]
  return models.get(name).configure(counts=counts, **options), counts


def test_path_probabilities_sum_to_one():
  """P(w | h) = Π_i σ(t_i h·u_{p_i}) is a distribution over the V words: what makes it a softmax."""
  V, D = 37, 6
  model, counts = _configured("cbow_hs", V)
  rng = np.random.default_rng(0)
  params = random_params(rng, V, D)
  context = jnp.array([[3, 5]], jnp.int32)
  mask = jnp.ones((1, 2))
  losses = [model.example_loss(params, Batch(jnp.int32(w), context[0], mask[0], jnp.zeros(0, jnp.int32)))
            for w in range(V)]
  np.testing.assert_allclose(np.sum(np.exp(-np.asarray(losses))), 1.0, rtol=1e-12)


@pytest.mark.parametrize("name", HS)
def test_loss_matches_numpy_loop(name):
  V, D, B, C = 23, 5, 9, 4
  model, counts = _configured(name, V)
  codes, points, lengths = hsoftmax.huffman_tree(counts)
  rng = np.random.default_rng(1)
  params, batch = random_params(rng, V, D), awkward_batch(rng, V, B, C, 0)
  W_in, W_out = (np.asarray(p) for p in params)

  def path_loss(h, w):
    return sum(np.logaddexp(0.0, -(1 - 2 * codes[w, i]) * (W_out[points[w, i]] @ h)) for i in range(lengths[w]))

  total = 0.0
  for b in range(B):
    c, ctx, m = int(batch.center[b]), np.asarray(batch.context[b]), np.asarray(batch.mask[b])
    if name == "cbow_hs":
      if m.sum() > 0:
        total += path_loss(sum(m[j] * W_in[ctx[j]] for j in range(C)) / m.sum(), c)
    else:
      total += sum(m[j] * path_loss(W_in[c], ctx[j]) for j in range(C))
  np.testing.assert_allclose(model.loss(params, batch), total / B, rtol=1e-12)


@pytest.mark.parametrize("name", HS)
def test_check_gradients(name):
  assert models.check_gradients(name) < 1e-10


@pytest.mark.parametrize("name", HS)
def test_checker_catches_a_dropped_term(name, monkeypatch):
  """The closed form with its W_in rows zeroed, registered as a user would: the checker must fail it."""
  monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))   # the test's model goes away after

  def configure(model, **options):
    real = models.get(name).configure(**options)

    def rows(params, batch):
      loss, rg = real.row_grads(params, batch)
      return loss, rg._replace(in_rows=jnp.zeros_like(rg.in_rows))
    return real._replace(name=model.name, row_grads=rows)
  models.register(f"test_{name}_no_in", models.get(name).example_loss, configure_fn=configure)
  assert models.check_gradients(f"test_{name}_no_in") > 1e-2


@pytest.mark.parametrize("shape", [(13, 5, 8, 4), (29, 3, 6, 10)])
def test_swapped_rule_is_the_gradient_on_swapped_pairs(shape):
  """sgram_hs's training rule is word2vec.c's orientation: the model's own loss on swap_pairs(batch)."""
  V, D, B, C = shape
  model, _ = _configured("sgram_hs", V)
  rng = np.random.default_rng(5)
  params, batch = random_params(rng, V, D), awkward_batch(rng, V, B, C, 0)
  loss, rg = jax.jit(model.train_rows)(params, batch)
  pairs = rewrites.swap_pairs(batch)
  np.testing.assert_allclose(np.sum(loss) / (B * C), model.loss(params, pairs), rtol=1e-12)
  auto = jax.jit(jax.grad(model.loss))(params, pairs)
  zeros = Params(jnp.zeros_like(params.W_in), jnp.zeros_like(params.W_out))
  for a, c in zip(auto, losses.apply_rows(zeros, rg, 1.0 / (B * C))):
    np.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-13)
  direct = models.get("sgram_hs").configure(counts=_configured("sgram_hs", V)[1], sgram_hs_form="direct")
  assert direct.train_rows is None and direct.rows is direct.row_grads


def test_cbow_hs_context_rule():
  """"sum" (word2vec.c) gives each context word the whole ∂L/∂h: n times the exact gradient's rows."""
  V = 17
  rng = np.random.default_rng(6)
  params, batch = random_params(rng, V, 4), awkward_batch(rng, V, 7, 4, 0)
  exact, _ = _configured("cbow_hs", V, cbow_context_grad="mean")
  w2v, _ = _configured("cbow_hs", V, cbow_context_grad="sum")
  _, e = exact.train_rows(params, batch)
  _, s = w2v.train_rows(params, batch)
  n = np.maximum(np.asarray(batch.mask).sum(axis=1), 1.0)
  np.testing.assert_allclose(s.out_rows, e.out_rows, rtol=1e-12)
  np.testing.assert_allclose(np.asarray(s.in_rows).reshape(7, 4, -1),
                             n[:, None, None] * np.asarray(e.in_rows).reshape(7, 4, -1), rtol=1e-12)
  with pytest.raises(W2VError, match="cbow_context_grad"):
    _configured("cbow_hs", V, cbow_context_grad="both")


def test_without_a_vocabulary_the_model_says_so():
  rng = np.random.default_rng(7)
  params, batch = random_params(rng, 9, 3), awkward_batch(rng, 9, 4, 2, 0)
  for name in HS:
    assert models.get(name).configure(counts=None) is models.get(name)
    with pytest.raises(W2VError, match="needs a vocabulary"):
      models.get(name).loss(params, batch)
  model, _ = _configured("sgram_hs", 11)                 # a tree for 11 words, tables of 9 rows
  with pytest.raises(W2VError, match="tree was built for 11 words"):
    model.loss(params, batch)
  with pytest.raises(W2VError, match="sgram_hs_form"):
    _configured("sgram_hs", 11, sgram_hs_form="sideways")


def _step(name, counts, **cfg):
  return engine.select_step(TrainConfig(model=name, layout="batch", max_dup=None, **cfg),
                            backend_status=native.Status(False, "off in this test"), counts=counts)


def test_engine_steps_are_sgd_on_the_loss():
  """The engine's fast step: cbow_hs (exact rule) is optax.sgd on its mean loss at lr·B; sgram_hs
  (word2vec.c's orientation) is optax.sgd on its mean loss over swap_pairs(batch) at lr·B·C."""
  V, B, C, lr = 13, 8, 4, 0.1
  counts = np.sort(np.random.default_rng(8).integers(1, 40, V))[::-1]
  rng = np.random.default_rng(0)
  params, batch = random_params(rng, V, 5), awkward_batch(rng, V, B, C, 0)
  for name, research_batch, scale in [("cbow_hs", batch, B), ("sgram_hs", rewrites.swap_pairs(batch), B * C)]:
    spec = _step(name, counts, cbow_context_grad="mean", neg=0)
    fast, _ = jax.jit(spec.step)(step_lib.TrainState(params), batch, lr)
    init, research = step_lib.make_research_step(spec.model.example_loss, spec.model.per_pair, optax.sgd)
    slow, _ = jax.jit(research)(init(params), research_batch, lr * scale)
    for a, b in zip(fast.params, slow.params):
      np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


# ----------------------------------------------------------------------------- training

@pytest.mark.parametrize("name", HS)
def test_training_learns_the_planted_groups(tmp_path, name):
  path = planted_corpus(tmp_path / "planted.txt")
  cfg = TrainConfig(model=name, epochs=2, dim=32, min_count=1, neg=0, sample=0.0, batch_size=64, steps_per_call=8)
  result = api.train(cfg, [path], None, cache_dir=tmp_path / "cache", log_every_s=0.0)
  assert result.summary["status"] == "finished"
  assert result.summary["engine"]["step"].startswith(f"{name}: ")
  losses = [r["loss"] for r in result.history]
  assert losses[-1] < losses[0]
  assert group_purity(result.vocab.words, np.asarray(result.params.W_in)) > 0.9
  untrained = np.asarray(models.init(jax.random.PRNGKey(0), len(result.vocab.words), 32).W_in)
  assert group_purity(result.vocab.words, untrained) < 0.5        # the test can fail: chance is 11/47
