"""A user's own model: the registry, the public gradient checker, autodiff on rows, the --plugin flag, and
a mesh."""
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from w2v_jax import Batch, Params, TrainConfig, W2VError, losses, models
from w2v_jax import step as step_lib
from tests.helpers import awkward_batch, jax_step, planted_corpus, random_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = os.path.join(ROOT, "experiments", "example_plugin.py")


def _user_cbow(params: Params, ex: Batch):
  """CBOW with negative sampling, reading W_in at the context (not the center)."""
  n = jnp.sum(ex.mask)
  h = jnp.sum(ex.mask[:, None] * params.W_in[ex.context], axis=0) / jnp.maximum(n, 1.0)
  loss = jax.nn.softplus(-params.W_out[ex.center] @ h) + jnp.sum(jax.nn.softplus(params.W_out[ex.negatives] @ h))
  return jnp.where(n > 0, loss, 0.0)


def test_register_get_validate_and_the_builtins_go_through_it():
  m = models.register("test_user_cbow", _user_cbow)
  assert models.get("test_user_cbow") is m and "test_user_cbow" in models.names()
  assert set(models.NAMES) <= set(models.names())
  assert TrainConfig(model="test_user_cbow", lr=0.05).validate().learning_rate == 0.05
  with pytest.raises(W2VError, match="unknown model"):
    TrainConfig(model="no_such_model").validate()
  with pytest.raises(W2VError, match="non-empty word"):
    models.register("two words", _user_cbow)
  with pytest.raises(W2VError, match="no closed-form gradient"):
    models.check_gradients("test_user_cbow")


@pytest.mark.parametrize("name", models.NAMES)
def test_check_gradients_passes_the_builtins(name):
  assert models.check_gradients(name) < 1e-10


def test_check_gradients_catches_a_closed_form_with_one_term_dropped():
  def dropped(params, batch):   # cbow_neg's closed form without the negatives' W_out rows
    loss, rg = losses.cbow_neg_row_grads(params, batch, "mean")
    B = batch.center.shape[0]
    return loss, rg._replace(out_idx=rg.out_idx[:B], out_rows=rg.out_rows[:B])
  models.register("test_dropped", losses.cbow_neg_example_loss, row_grads=dropped)
  assert models.check_gradients("test_dropped") > 1e-2


@pytest.mark.parametrize("name,user_loss", [("sgram_neg", losses.sgram_neg_example_loss),
                                            ("cbow_neg", _user_cbow)])
def test_autodiff_rows_equal_the_closed_form_rows(name, user_loss):
  """The same batches, the same summed update: the center-reading (skip-gram) and the context-reading
  (CBOW) orientations."""
  models.register(f"test_auto_{name}", user_loss)
  rng = np.random.default_rng(0)
  params, batch = random_params(rng, 17, 5), awkward_batch(rng, 17, 9, 4, 3)
  auto = jax_step(f"test_auto_{name}").step(step_lib.TrainState(params), batch, 0.1)
  built = jax_step(name, cbow_context_grad="mean", sgram_neg_form="shared").step(
      step_lib.TrainState(params), batch, 0.1)
  for a, b in zip(auto[0].params, built[0].params):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(auto[1].loss_sum, built[1].loss_sum, rtol=1e-10)
  assert "autodiff rows" in jax_step(f"test_auto_{name}").name
  # Only the blocks the loss reads are gathered: skip-gram reads W_in at the center only.
  reads = models.read_slots(user_loss)
  assert reads == (((True, False, False), (False, True, True)) if name == "sgram_neg" else
                   ((False, True, False), (True, False, True)))


def _env(tmp_path, devices=1):
  return {**os.environ, "W2V_JAX_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu",
          "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


TINY = ["--epochs=2", "--dim=16", "--window=2", "--neg=3", "--min_count=1", "--batch_size=64",
        "--steps_per_call=4", "--sample=0"]


def test_a_plugin_model_trains_from_the_command_line_and_learns(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  out = subprocess.run([sys.executable, "-m", "experiments.train", f"--plugin={PLUGIN}", "--model=my_sgns",
                        f"--corpus={corpus}", f"--workdir={tmp_path / 'run'}", *TINY], cwd=ROOT,
                       env=_env(tmp_path), capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  assert out.stdout.splitlines()[0].startswith("step: my_sgns:") and "autodiff rows" in out.stdout
  from tests.helpers import group_purity
  from w2v_jax import vectors_io
  words, vecs = vectors_io.load(tmp_path / "run" / "vectors.txt")
  assert group_purity(words, vecs) > 0.9
  bad = subprocess.run([sys.executable, "-m", "experiments.train", f"--plugin={tmp_path / 'none.py'}"],
                       cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
  assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "no such file" in bad.stderr


def test_a_plugin_model_on_a_mesh_equals_one_device(tmp_path):
  corpus = planted_corpus(tmp_path / "c.txt")
  tables = {}
  for mesh in ("", "--mesh=data:2"):
    work = tmp_path / f"run{mesh[-1:]}"
    out = subprocess.run([sys.executable, "-m", "experiments.train", f"--plugin={PLUGIN}", "--model=my_sgns",
                          f"--corpus={corpus}", f"--workdir={work}", *TINY, *([mesh] if mesh else [])],
                         cwd=ROOT, env=_env(tmp_path, 2), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    with np.load(work / "checkpoint.npz") as z:
      tables[mesh] = [z[k] for k in z.files if k.startswith("leaf")]
  for a, b in zip(tables[""], tables["--mesh=data:2"]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_plugin_that_is_not_python_is_one_line(tmp_path):
  (tmp_path / "notes.txt").write_text("not python")
  bad = subprocess.run([sys.executable, "-m", "experiments.train", f"--plugin={tmp_path / 'notes.txt'}"],
                       cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
  assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "not a Python file" in bad.stderr
