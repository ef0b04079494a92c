"""Hierarchical softmax: `cbow_hs` and `sgram_hs`, registered through the public `models.register`.

The tree (word2vec.c's CreateBinaryTree). A Huffman tree over the vocabulary's counts: V leaves (the
words) and V − 1 inner nodes. word2vec.c builds it with two queues, no heap: the leaves, sorted by count
descending, are read from the *end* (pos1 = V − 1, moving down: the rarest first), and the inner nodes,
created in non-decreasing count order, from the start of their own queue (pos2 = V, moving up). Each of
the V − 1 steps takes the two smallest fronts, preferring the leaf only when count[pos1] < count[pos2]
(a tie takes the inner node), makes inner node V + a their parent, and marks the second one's branch
bit: binary[min2] = 1. Inner node V + a is W_out row a (word2vec.c's syn1): the root is row V − 2, and
W_out's last row, V − 1, is never read. A word w's path, from the root down, is

  points[w, i]  the inner node at depth i (points[w, 0] = V − 2, the root), i < lengths[w],
  codes[w, i]   the branch taken at that node: the bit of the node at depth i + 1,

padded to L = the longest code (points 0, codes 0 beyond lengths[w]; every use masks them). Frequent words
get short codes: the expected code length Σ_w count_w len_w is the Huffman optimum.

The loss (word2vec.c's `hs`). At inner node p with hidden vector h, word2vec.c computes f = σ(h·u_p) and
g = (1 − code − f)·alpha: it maximises log σ(h·u_p) on a 0-branch and log σ(−h·u_p) on a 1-branch. With
the sign t_i = 1 − 2c_i, the loss of predicting word w from h is

  L(h, w) = Σ_{i < len(w)} −log σ(t_i h·u_{p_i}) = Σ_i softplus(−t_i s_i),   s_i = h·u_{p_i},
  ∂L/∂s_i = σ(s_i) − (1 − c_i)   (=: g_i; code 0: σ(s) − 1, code 1: σ(s)),
  ∂L/∂u_{p_i} = g_i h,           ∂L/∂h = Σ_i g_i u_{p_i}.

P(w | h) = Π_i σ(t_i s_i) sums to 1 over the V words (at each inner node the two branches' σ(s) and σ(−s)
add to 1), so L is −log of a proper softmax over V words at a cost of len(w) ≈ log₂ V rows.

  cbow_hs    h = Σ_j m_j v_{context_j} / n (losses.cbow_example_loss's mean), w = center, per example.
             Training follows `cbow_context_grad` as cbow_neg does: "sum" (word2vec.c, gensim) gives every
             context word the whole ∂L/∂h, "mean" the exact gradient ∂L/∂h / n.
  sgram_hs   the skip-gram model as documented: h = v_center, w = each real context word, summed over
             the window (per_pair). Its closed form touches B·C·L rows of W_out: each context word's path.

The orientation of sgram_hs's training rule. word2vec.c (and gensim's fast_sentence_sg_hs) do the
opposite: for the pair (center, context_j) they take h = v_{context_j} and walk the *center's* path. That
is sgram_hs's loss on rewrites.swap_pairs(batch): skip-gram's pair set is symmetric, so it is the same
model on the same pairs, only each pair is read the other way round. Per window it is one [C, D] x [D, L]
product, C context vectors against the center's one path: B·L rows of W_out and B·C rows of W_in a step,
where the documented orientation reads C paths per window (B·C·L rows of W_out, C times more gathering
and scatter-adding, and C times more duplicates of each upper node for the --max_dup cap to damp).
Measured on the dev corpus (docs/training.md, "Hierarchical softmax"), the swapped rule learned better and ran
several times faster. So the swapped rule is sgram_hs's `train_rows` (configure's sgram_hs_form="swapped", the
default; "direct" trains the documented orientation's closed form). `row_grads`, which check_gradients
tests against jax.grad, is always the documented orientation's; `sgram_hs_swapped_row_grads` is tested
against jax.grad of the same loss on swap_pairs(batch) (tests/test_hsoftmax.py).

The span layout (`cbow_hs_span_row_grads`, `sgram_hs_span_row_grads`, the models' `span_rows`): the same
rules on a SpanBatch, each of the B + 2W input rows gathered once and its W_in row the sum of what its
context slots receive, as rewrites.py's span forms of the negative-sampling models (the duplicate cap then
counts a word's span positions on W_in, not its slots). The native CPU kernels (native/hs_steps.cc) do the
whole step on this layout, each window walking its center's own path length rather than L;
`native_options` hands them the tree, and these span rows as their JAX reference (native.span_step_reference).
The root is on every path, so a step of B windows gives it B rows: without the duplicate cap the tables
blow up at word2vec's learning rates.

The models read a word's path by walking up the tree's parent links (`Tree`, `_path`), leaf first: the
same nodes and bits as `huffman_tree`'s rows, in reverse order, with constants of 5 bytes a node instead
of 5·L bytes a word in the jitted step.

The tree is built once per vocabulary: `configure(counts=...)` builds it (cached by a hash of the counts,
so reconfiguring with the same vocabulary does not rebuild) and closes the losses over it. Without counts
the model is returned unchanged, and its loss raises a W2VError saying it needs a vocabulary.

Shape letters: B batch, C context slots, L longest code, D dim.
"""
import functools
import hashlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import losses, models, rewrites
from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, Params, RowGrads, SpanBatch

__all__ = ["huffman_tree", "Tree", "tree_for", "SGRAM_HS_FORMS"]

SGRAM_HS_FORMS = ("swapped", "direct")


# ----------------------------------------------------------------------------- the Huffman tree

def huffman_tree(counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """word2vec.c's CreateBinaryTree on counts [V]: (codes int8 [V, L], points int32 [V, L], lengths int32 [V]).

  codes[w, :lengths[w]] and points[w, :lengths[w]] are word w's branch bits and inner nodes from the root
  down (module docstring); beyond lengths[w] both are 0. L = max(lengths), at least 1.

  word2vec.c runs on its vocabulary sorted by count descending. Counts in that order are used as they are,
  and the result is word2vec.c's bit for bit (ties included); counts in any other order are first sorted
  (stably, by count descending), so the tree is still an optimal Huffman tree. A one-word vocabulary has
  nothing to predict: lengths [0].
  """
  up, bit, V, L = _build(counts)
  codes, points, lengths = _paths(up, bit, V, L)
  return codes, points, lengths


def _build(counts) -> tuple[np.ndarray, np.ndarray, int, int]:
  """The tree as parent links: (up int32 [2V−1], bit int8 [2V−1], V, L).

  Node w < V is word w's leaf, node V + a the inner node made at step a (W_out row a), 2V − 2 the root;
  up[n] is n's parent (the root's is itself) and bit[n] the branch bit word2vec.c gives n (binary[n]).
  L is the height of the tree, the longest code (at least 1). The merge is word2vec.c's two-queue O(V)
  loop in plain Python ints: about 0.5 s for V = 1M."""
  counts = np.asarray(counts)
  if counts.ndim != 1 or counts.size == 0:
    raise W2VError(f"the Huffman tree needs a non-empty vector of word counts, got shape {counts.shape}")
  if not np.all(np.isfinite(counts)) or counts.min() < 0 or counts.max() >= 1e15:
    raise W2VError("word counts must be finite, >= 0 and < 1e15 (word2vec.c's sentinel)")
  V = counts.size
  if V == 1:
    return np.zeros(1, np.int32), np.zeros(1, np.int8), 1, 1
  order = np.argsort(-counts, kind="stable")
  unsorted = not np.array_equal(order, np.arange(V))
  up, bit, height = _merge((counts[order] if unsorted else counts).tolist())
  if unsorted:   # leaf r of the sorted merge is word order[r]: renumber the leaves by word id
    inv = np.empty(V, np.int64)
    inv[order] = np.arange(V)
    up[:V], bit[:V] = up[inv], bit[inv]
  return up, bit, V, height


def _merge(count: list) -> tuple[np.ndarray, np.ndarray, int]:
  """CreateBinaryTree's merge loop on counts sorted descending: (up, bit, height) as `_build` describes."""
  V = len(count)
  count = count + [10 ** 15] * V            # count[V..2V-1] = 1e15: inner nodes not yet made
  parent = [0] * (2 * V)
  binary = [0] * (2 * V)
  height = [0] * (2 * V)
  pos1, pos2 = V - 1, V
  for a in range(V - 1):
    if pos1 >= 0 and count[pos1] < count[pos2]:
      min1, pos1 = pos1, pos1 - 1
    else:
      min1, pos2 = pos2, pos2 + 1
    if pos1 >= 0 and count[pos1] < count[pos2]:
      min2, pos1 = pos1, pos1 - 1
    else:
      min2, pos2 = pos2, pos2 + 1
    count[V + a] = count[min1] + count[min2]
    parent[min1] = parent[min2] = V + a
    binary[min2] = 1
    height[V + a] = 1 + max(height[min1], height[min2])
  parent[2 * V - 2] = 2 * V - 2
  return np.asarray(parent[:2 * V - 1], np.int32), np.asarray(binary[:2 * V - 1], np.int8), height[2 * V - 2]


def _paths(up: np.ndarray, bit: np.ndarray, V: int, L: int):
  """Codes, points and lengths from the parent links, as word2vec.c's second loop reads them.

  word2vec.c walks from leaf w up: code[b] = binary[a], point[b] = a, until a reaches the root; then it
  reverses both, and stores point[i] = (node at depth i) − V. Here all V leaves walk up together, one
  numpy step per level; step k writes bit[node] and up[node] − V at column lengths[w] − 1 − k. The
  arrays are filled depth-major ([L, V]), where each level's writes run forward (in a sorted vocabulary
  the code length grows with the word id), then transposed."""
  root = 2 * V - 2
  codes = np.zeros(L * V, np.int8)
  points = np.zeros(L * V, np.int32)
  if V == 1:
    return codes.reshape(1, 1), points.reshape(1, 1), np.zeros(1, np.int32)
  lengths = np.zeros(V, np.int32)          # first the depths: walk every leaf to the root
  node = np.arange(V, dtype=np.int32)
  for _ in range(L):
    live = node != root
    lengths += live
    node = up[node]
  word = np.arange(V, dtype=np.int32)
  node, d = word.copy(), lengths.copy()    # d: the depth of each live walk's current node
  for _ in range(L):
    live = d > 0
    if not live.all():
      word, node, d = word[live], node[live], d[live]
    if node.size == 0:
      break
    flat = (d - 1).astype(np.int64) * V + word
    codes[flat] = bit[node]
    node = up[node]
    points[flat] = node - V
    d = d - 1
  return (np.ascontiguousarray(codes.reshape(L, V).T), np.ascontiguousarray(points.reshape(L, V).T),
          lengths)


class Tree(NamedTuple):
  """A vocabulary's tree as the model closes over it: parent links, not [V, L] paths.

  A word's path is read by walking up from its leaf, L gathers of [B] or [B, C] ids: the constants the
  jitted step embeds are 5 bytes a node (10 MB for V = 1M), where the padded [V, L] paths would be
  5·L bytes a word (about 250 MB for V = 1M, which XLA then spends seconds compiling)."""
  up: jax.Array    # int32 [2V−1]  each node's parent; the root's is itself
  bit: jax.Array   # int8 [2V−1]   each node's branch bit: its code digit under its parent
  V: int
  L: int           # the longest code


_TREES: dict[str, Tree] = {}
_CACHE_SIZE = 4


def counts_key(counts) -> str:
  """A hash of the counts (dtype, shape and values): the tree cache's key."""
  counts = np.ascontiguousarray(counts)
  h = hashlib.sha256(f"{counts.dtype.str}{counts.shape}".encode())
  h.update(counts.tobytes())
  return h.hexdigest()


def tree_for(counts) -> Tree:
  """The tree of these counts, built once (the last few vocabularies' trees are kept)."""
  key = counts_key(counts)
  if key not in _TREES:
    up, bit, V, L = _build(counts)
    while len(_TREES) >= _CACHE_SIZE:
      _TREES.pop(next(iter(_TREES)))
    _TREES[key] = Tree(jnp.asarray(up), jnp.asarray(bit), V, L)
  return _TREES[key]


# ----------------------------------------------------------------------------- the path's terms

def _path(tree: Tree, words, dtype):
  """The paths of `words` [...]: inner nodes [..., L], labels 1 − c [..., L] and the path mask [..., L].

  Step k of the walk up from the leaf is the node at depth len − 1 − k: the path in the reverse of
  word2vec.c's order (the loss sums over it). Past the root the walk stays there, masked."""
  root = 2 * tree.V - 2
  node, points, labels, on_path = words, [], [], []
  for _ in range(tree.L):
    parent = tree.up[node]
    points.append(jnp.maximum(parent - tree.V, 0))   # (a one-word vocabulary: its root is its leaf)
    labels.append(1 - tree.bit[node])
    on_path.append(node != root)
    node = parent
  return (jnp.stack(points, axis=-1), jnp.stack(labels, axis=-1).astype(dtype),
          jnp.stack(on_path, axis=-1).astype(dtype))


def _terms(s, label, weight):
  """Per node: the loss weight · softplus(−t s) and its derivative g = weight · (σ(s) − (1 − c)).

  −log σ(t s) with t = 1 − 2c = 2·label − 1: softplus(−s) on a 0-branch (label 1), softplus(s) on a
  1-branch."""
  loss = weight * jax.nn.softplus((1.0 - 2.0 * label) * s)
  return loss, weight * (jax.nn.sigmoid(s) - label)


def _check_tables(tree: Tree, params: Params, name: str) -> None:
  V = tree.V
  if params.W_out.shape[0] != V or params.W_in.shape[0] != V:
    raise W2VError(f"{name}: the tables have {params.W_out.shape[0]} rows but the tree was built for {V} "
                   "words; configure the model with the counts of the vocabulary it trains on")


def _needs_vocab(name: str):
  def fail(*_):
    raise W2VError(f"model {name!r} needs a vocabulary: its Huffman tree is built from the word counts. "
                   f"Use models.get({name!r}).configure(counts=vocab.counts) (api.train and loop.fit do)")
  return fail


# ----------------------------------------------------------------------------- cbow_hs

def cbow_hs_example_loss(tree: Tree, params: Params, ex: Batch) -> jax.Array:
  """Σ_{i<len(center)} −log σ(t_i h·u_{p_i}), h the mean of the context's input vectors; 0 if n = 0."""
  h, n = losses._context_mean(params, ex.context, ex.mask)                 # [D]
  points, label, on_path = _path(tree, ex.center, h.dtype)                 # [L]
  loss, _ = _terms(params.W_out[points] @ h, label, on_path)
  return jnp.where(n > 0, jnp.sum(loss), 0.0)


def cbow_hs_row_grads(tree: Tree, params: Params, batch: Batch, cbow_context_grad: str):
  """Closed form of cbow_hs, generalised to a masked context mean.

  With h = Σ_j m_j v_{context_j} / n, the center's path p_i, labels 1 − c_i, s_i = h·u_{p_i}, and
  g_i = [i < len] (σ(s_i) − (1 − c_i)) (zero for an example with n = 0):
    L = Σ_i [i < len] softplus(−t_i s_i)
    ∂L/∂u_{p_i} = g_i h              (rows of W_out at the path; padding nodes get zero rows)
    ∂L/∂h = Σ_i g_i u_{p_i}
    ∂L/∂v_{context_j} = m_j ∂L/∂h / n   ("mean"; "sum": m_j ∂L/∂h, word2vec.c's neu1e)
  """
  h, n = losses._batch_h(params, batch)                                    # [B, D], [B]
  loss, dh, out_idx, out_rows = _cbow_head(tree, params, h, n, batch.center)
  in_idx, in_rows = losses._scatter_context(batch, dh, n, cbow_context_grad)
  return loss, RowGrads(in_idx, in_rows, out_idx, out_rows)


def _cbow_head(tree: Tree, params: Params, h, n, center):
  """cbow_hs from the hidden vectors h [B, D] (n [B] real context words) on: (loss [B], ∂L/∂h [B, D], the
  W_out ids [B·L] (the centers' paths) and rows g_i h [B·L, D], zero off the path and where n = 0)."""
  points, label, on_path = _path(tree, center, h.dtype)                    # [B, L]
  valid = (n > 0).astype(h.dtype)
  u = params.W_out[points]                                                 # [B, L, D]
  loss, g = _terms(losses.row_dots(u, h), label, valid[:, None] * on_path)   # [B, L]
  dh = losses.weighted_rows(g, u)                                          # [B, D]
  out_rows = (g[:, :, None] * h[:, None, :]).reshape(-1, h.shape[1])       # [B·L, D]
  return jnp.sum(loss, axis=1), dh, points.reshape(-1), out_rows


# ----------------------------------------------------------------------------- sgram_hs

def sgram_hs_example_loss(tree: Tree, params: Params, ex: Batch) -> jax.Array:
  """Σ_j m_j Σ_{i<len(context_j)} −log σ(t_ji v_center·u_{p_ji}): h = v_center predicts each context word."""
  h = params.W_in[ex.center]                                               # [D]
  points, label, on_path = _path(tree, ex.context, h.dtype)                # [C, L]
  loss, _ = _terms(params.W_out[points] @ h, label, ex.mask[:, None] * on_path)
  return jnp.sum(loss)


def sgram_hs_row_grads(tree: Tree, params: Params, batch: Batch):
  """Closed form of sgram_hs in its documented orientation.

  h = v_center; context word j's path p_ji with labels 1 − c_ji, s_ji = h·u_{p_ji},
  g_ji = m_j [i < len_j] (σ(s_ji) − (1 − c_ji)):
    L = Σ_{j,i} m_j [i < len_j] softplus(−t_ji s_ji)
    ∂L/∂u_{p_ji} = g_ji h             (B·C·L rows of W_out; repeats add)
    ∂L/∂v_center = Σ_{j,i} g_ji u_{p_ji}
  """
  h = params.W_in[batch.center]                                            # [B, D]
  points, label, on_path = _path(tree, batch.context, h.dtype)             # [B, C, L]
  u = params.W_out[points]                                                 # [B, C, L, D]
  s = jnp.sum(u * h[:, None, None, :], axis=-1)                            # [B, C, L]
  loss, g = _terms(s, label, batch.mask[:, :, None] * on_path)
  dh = jnp.sum(g[..., None] * u, axis=(1, 2))                              # [B, D]
  out_rows = (g[..., None] * h[:, None, None, :]).reshape(-1, h.shape[1])  # [B·C·L, D]
  return jnp.sum(loss, axis=(1, 2)), RowGrads(batch.center, dh, points.reshape(-1), out_rows)


def sgram_hs_swapped_row_grads(tree: Tree, params: Params, batch: Batch):
  """(loss [B], RowGrads) of sgram_hs summed over rewrites.swap_pairs(batch), per window b: word2vec.c's
  skip-gram hs, h_j = v_{context_j} walking the center's path p_i (labels 1 − c_i).

  With s_ji = h_j·u_{p_i} [C, L] and G_ji = m_j [i < len] (σ(s_ji) − (1 − c_i)):
    L = Σ_{j,i} m_j [i < len] softplus(−t_i s_ji)
    ∂L/∂v_{context_j} = Σ_i G_ji u_{p_i}   (G U: B·C rows of W_in)
    ∂L/∂u_{p_i}       = Σ_j G_ji h_j       (Gᵀ H: B·L rows of W_out, summed over the window)
  """
  loss, dh, out_idx, out_rows = _swapped(tree, params, params.W_in[batch.context], batch.center, batch.mask)
  return loss, RowGrads(batch.context.reshape(-1), dh.reshape(-1, dh.shape[-1]), out_idx, out_rows)


def _swapped(tree: Tree, params: Params, h, center, mask):
  """The swapped rule's maths on gathered context rows h [B, C, D]: (loss [B], ∂L/∂h [B, C, D], the W_out
  ids [B·L] (the centers' paths) and rows Gᵀ H [B·L, D], zero off the path)."""
  points, label, on_path = _path(tree, center, h.dtype)                    # [B, L]
  u = params.W_out[points]                                                 # [B, L, D]
  s = jnp.einsum("bcd,bld->bcl", h, u)                                     # [B, C, L]
  loss, g = _terms(s, label[:, None, :], mask[:, :, None] * on_path[:, None, :])
  # Σ over L and over C written out (as rewrites._swapped): faster on XLA:CPU than the batched dots.
  dh = sum(g[:, :, i, None] * u[:, None, i, :] for i in range(u.shape[1]))  # [B, C, D]
  du = sum(g[:, j, :, None] * h[:, j, None, :] for j in range(h.shape[1]))  # [B, L, D]
  return jnp.sum(loss, axis=(1, 2)), dh, points.reshape(-1), du.reshape(-1, h.shape[-1])


# ----------------------------------------------------------------------------- the span layout
# The same rules on a SpanBatch (types.py): B + 2W input rows gathered once, each position's W_in row the
# sum of what its context slots receive (types.slots / unslots), as the negative-sampling models' span
# forms. native.FUSED_STEPS's cbow_hs and sgram_hs kernels compute these, then rows.py's update.

def cbow_hs_span_parts(tree: Tree, params: Params, span: SpanBatch, cbow_context_grad: str):
  """cbow_hs on a SpanBatch: (loss [B], coef [B, C], ∂L/∂h [B, D], the W_out part (ids [B·L], rows
  [B·L, D])) as `_cbow_head` gives them. Context slot (b, j) receives coef[b, j] · ∂L/∂h_b, coef = m (sum)
  or m / max(n, 1) (mean): losses.context_scale."""
  h, n = rewrites.span_context_mean(params, span)                          # [B, D], [B]
  window = span.mask.shape[1] // 2
  loss, dh, out_idx, out_rows = _cbow_head(tree, params, h, n, span.tokens[window:window + h.shape[0]])
  return loss, losses.context_scale(span.mask, n, cbow_context_grad), dh, (out_idx, out_rows)


def cbow_hs_span_row_grads(tree: Tree, params: Params, span: SpanBatch, cbow_context_grad: str):
  """`cbow_hs_row_grads` (its training rule) of batches.to_batch(span), the W_in side as one row per span
  position (in_idx = span.tokens), the sum of what its context slots receive."""
  loss, coef, dh, (out_idx, out_rows) = cbow_hs_span_parts(tree, params, span, cbow_context_grad)
  in_rows = rewrites.unslots(coef[:, :, None] * dh[:, None, :], coef.shape[1] // 2)   # [B+2W, D]
  return loss, RowGrads(span.tokens, in_rows, out_idx, out_rows)


def sgram_hs_span_row_grads(tree: Tree, params: Params, span: SpanBatch):
  """`sgram_hs_swapped_row_grads` of batches.to_batch(span), from B+2W input rows, the W_in side as one
  row per span position (in_idx = span.tokens): Σ over its slots (b, j) of Σ_i G_bji u_{p_i}."""
  B, C = span.mask.shape
  window = C // 2
  h = rewrites.slots(params.W_in[span.tokens], B, window)                  # [B, C, D]
  loss, dh, out_idx, out_rows = _swapped(tree, params, h, span.tokens[window:window + B], span.mask)
  return loss, RowGrads(span.tokens, rewrites.unslots(dh, window), out_idx, out_rows)


# ----------------------------------------------------------------------------- registration

def _checked(fn, tree: Tree, name: str):
  """fn(tree, params, batch, ...) with the table sizes checked against the tree at trace time."""
  @functools.wraps(fn)
  def f(params, batch, *args, **kw):
    _check_tables(tree, params, name)
    return fn(tree, params, batch, *args, **kw)
  return f


def _configure_cbow_hs(model: models.Model, *, counts=None, cbow_context_grad: str = "sum", **_):
  """cbow_hs on the tree of `counts`, trained under `cbow_context_grad` (as cbow_neg)."""
  losses.check_context_grad(cbow_context_grad)
  if counts is None:
    return model
  tree = tree_for(counts)
  rows = _checked(cbow_hs_row_grads, tree, model.name)
  span_rows = functools.partial(_checked(cbow_hs_span_row_grads, tree, model.name),
                                cbow_context_grad=cbow_context_grad)
  return model._replace(example_loss=_checked(cbow_hs_example_loss, tree, model.name),
                        row_grads=functools.partial(rows, cbow_context_grad="mean"),
                        train_rows=functools.partial(rows, cbow_context_grad=cbow_context_grad),
                        span_rows=span_rows, native_step="cbow_hs",
                        native_options=(("tree", tree), ("span_rows", span_rows),
                                        ("cbow_context_grad", cbow_context_grad)))


def _configure_sgram_hs(model: models.Model, *, counts=None, sgram_hs_form: str = "swapped", **_):
  """sgram_hs on the tree of `counts`; trained with word2vec.c's swapped orientation ("swapped", the
  default) or the documented one's closed form ("direct")."""
  if sgram_hs_form not in SGRAM_HS_FORMS:
    raise W2VError(f"sgram_hs_form must be one of {', '.join(SGRAM_HS_FORMS)}, got {sgram_hs_form!r}")
  if counts is None:
    return model
  tree = tree_for(counts)
  model = model._replace(example_loss=_checked(sgram_hs_example_loss, tree, model.name),
                         row_grads=_checked(sgram_hs_row_grads, tree, model.name))
  if sgram_hs_form == "direct":
    return model
  span_rows = _checked(sgram_hs_span_row_grads, tree, model.name)
  return model._replace(train_rows=_checked(sgram_hs_swapped_row_grads, tree, model.name), span_rows=span_rows,
                        native_step="sgram_hs", native_options=(("tree", tree), ("span_rows", span_rows)))


models.register("cbow_hs", _needs_vocab("cbow_hs"), _needs_vocab("cbow_hs"), per_pair=False, default_lr=0.05,
                uses_negatives=False, dense_out=False, configure_fn=_configure_cbow_hs)
models.register("sgram_hs", _needs_vocab("sgram_hs"), _needs_vocab("sgram_hs"), per_pair=True,
                uses_negatives=False, dense_out=False, configure_fn=_configure_sgram_hs)
