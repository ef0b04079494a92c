"""The source documents' own toy examples, trained with plain gradient descent on our losses."""
import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import Batch, Params, models

# Document 001's corpus and vocabulary, window m = 1, hidden size 2.
SENTENCES = [["I", "want", "to", "buy", "an", "Apple", "iPhone"], ["I", "want", "to", "eat", "an", "Apple", "now"]]
VOCAB = ["I", "want", "to", "buy", "eat", "an", "Apple", "iPhone", "now"]


def _toy_batch(window=1):
  idx = {w: i for i, w in enumerate(VOCAB)}
  center, context, mask = [], [], []
  for s in SENTENCES:
    for t, w in enumerate(s):
      ctx, m = [], []
      for o in [*range(-window, 0), *range(1, window + 1)]:
        ok = 0 <= t + o < len(s)
        ctx.append(idx[s[t + o]] if ok else 0)
        m.append(float(ok))
      center.append(idx[w]), context.append(ctx), mask.append(m)
  return Batch(jnp.asarray(center, jnp.int32), jnp.asarray(context, jnp.int32),
               jnp.asarray(mask), jnp.zeros((len(center), 0), jnp.int32))


def _doc001_init(seed):
  """Doc 001's init: both matrices uniform in [-0.8, 0.8)."""
  rng = np.random.default_rng(seed)
  return Params(jnp.asarray(rng.uniform(-0.8, 0.8, (9, 2))), jnp.asarray(rng.uniform(-0.8, 0.8, (9, 2))))


def _summed_loss_log(name, params, batch, lr, epochs, decay):
  """Full-batch gradient descent on the summed loss (doc 001 logs the sum over its 14 examples)."""
  model = models.get(name)
  B = batch.center.shape[0]
  loss = jax.jit(lambda p: model.loss(p, batch))
  step = jax.jit(lambda p, lr: jax.tree.map(lambda w, g: w - lr * B * g, p, model.grad(p, batch)))
  log = []
  for epoch in range(1, epochs):
    log.append(float(loss(params)) * B)
    params = step(params, lr)
    if decay:
      lr *= 1 / (1 + lr * epoch)        # doc 001's schedule
  return params, np.array(log)


def test_doc001_sgram_loss_falls_like_the_documents_log():
  """Doc 001 logs 55.09 -> 53.74 over 99 epochs at lr 0.001 (decaying), falling every epoch."""
  batch = _toy_batch()
  assert float(batch.mask.sum()) == 24          # 12 context words per sentence
  for seed in range(3):
    _, log = _summed_loss_log("sgram", _doc001_init(seed), batch, 0.001, 100, decay=True)
    assert np.all(np.diff(log) < 0)
    assert 45 < log[0] < 65                       # 24 · log 9 = 52.7 at uniform ŷ; the doc starts at 55.1
    assert 0.3 < log[0] - log[-1] < 6             # the doc's drop is 1.36


def test_doc001_sgram_learns_the_contexts_when_trained_longer():
  params, log = _summed_loss_log("sgram", _doc001_init(0), _toy_batch(), 0.05, 2000, decay=False)
  assert log[-1] < 0.8 * log[0]
  idx = {w: i for i, w in enumerate(VOCAB)}
  y_hat = jax.nn.softmax(params.W_out @ params.W_in[idx["want"]])
  top2 = {VOCAB[i] for i in np.argsort(-y_hat)[:2]}
  assert top2 == {"I", "to"}                     # the only neighbours of "want"


def test_doc000_cbow_trains_and_predicts_the_center():
  """Doc 000's settings: lr 0.05 on the full-softmax CBOW; the window (I, to) must predict "want"."""
  batch = _toy_batch()
  params, log = _summed_loss_log("cbow", _doc001_init(1), batch, 0.05, 1500, decay=False)
  assert np.all(np.diff(log[:50]) < 0) and log[-1] < 0.6 * log[0]
  idx = {w: i for i, w in enumerate(VOCAB)}
  h = (params.W_in[idx["I"]] + params.W_in[idx["to"]]) / 2
  assert VOCAB[int(jnp.argmax(params.W_out @ h))] == "want"
