"""The full-softmax models learn on real text with their default flags (the shipped corpus, one epoch for
cbow, two for sgram):
the loss per prediction falls below what the untrained model scores, and the vectors learn structure
that untrained vectors do not have (number words are more alike than frequent words at large).

sgram's first epoch (at its default lr, 0.0125) moves the vectors little: its number-word margin after
one epoch was 0.05-0.07 depending on the initial draw (models.init), after two 0.43. One epoch of 460k
words is little: the table in docs/softmax.md has the quality
after more training on more text."""
import jax
import numpy as np
import pytest

from w2v_jax import TrainConfig, api, models, sampling

NUMBERS = "two three four five six seven eight ten".split()


def _mean_cos(u, ids):
  s = u[ids] @ u[ids].T
  return float(s[np.triu_indices(len(ids), 1)].mean())


@pytest.mark.parametrize("model", ["cbow", "sgram"])
def test_full_softmax_learns_on_the_shipped_corpus(model, tmp_path):
  cfg = TrainConfig(model=model, dim=32, epochs=2 if model == "sgram" else 1, min_count=20)   # V = 2,719
  result = api.train(cfg, None, None, cache_dir=tmp_path / "cache", log_every_s=1.0)
  vocab = result.vocab
  # The untrained model's loss per prediction: W_out = 0, so the softmax is the prior (sgram: the
  # unigram distribution, --softmax_prior=unigram), scored on the subsampled tokens.
  p = vocab.counts / vocab.counts.sum()
  q = vocab.counts * sampling.keep_probs(vocab.counts, cfg.sample)
  q = q / q.sum()
  untrained = float(-(q * np.log(p)).sum())
  losses = [r["loss"] for r in result.history]
  assert np.isfinite(losses).all() and min(losses[1:]) < untrained - 0.1, (untrained, losses)
  assert result.summary["final_loss"] < untrained - 0.05
  # Structure: number words are closer to each other than frequent words at large are; not so at init.
  v = np.asarray(result.params.W_in)
  u = v / np.linalg.norm(v, axis=1, keepdims=True)
  nums = [vocab.index[w] for w in NUMBERS]
  others = list(range(50, 450, 50))
  assert _mean_cos(u, nums) - _mean_cos(u, others) > 0.06
  init = np.asarray(models.init(jax.random.PRNGKey(0), len(vocab.words), 32).W_in)
  ui = init / np.linalg.norm(init, axis=1, keepdims=True)
  assert _mean_cos(ui, nums) - _mean_cos(ui, others) < 0.045     # the check fails on untrained vectors
