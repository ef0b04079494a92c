"""Runs in a subprocess for tests/test_distributed.py, with forced CPU devices set by the caller.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/distributed_worker.py equivalence OUT C
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/distributed_worker.py reference OUT C
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python tests/distributed_worker.py host OUT C \
        --coordinator=localhost:PORT --process_id=P     # twice: P = 0 and 1

equivalence: fits on 1 device and on meshes of 4, and a run stopped on one mesh and resumed on another;
writes OUT/equivalence.json (the largest difference from the 1-device parameters per case).
host: one of 2 processes of a data:4 run over 2 hosts (2 devices each): OUT/params_P.npz, and process 0
writes OUT/run/vectors.txt. reference: the same run in one process, one corpus block per data shard.
locked: as host (`locked` instead of `host`), into OUT/run that the test holds locked: OUT/error_P.txt.
C is a corpus file. Runs in float32 (no conftest here), as a user's run does.
"""
import argparse
import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from w2v_jax import api, corpus, distributed, loop  # noqa: E402
from w2v_jax.config import TrainConfig  # noqa: E402
from w2v_jax.errors import W2VError  # noqa: E402

# window 3: buckets of 22, 21 and 21 centers, which split unevenly (padding); max_dup 4: damping at work.
# The default layout: the span layout with the fused kernels on one device where they are built, and its
# split on the meshes; buckets elsewhere.
TINY = dict(dim=16, window=3, neg=3, epochs=2, min_count=1, sample=1e-3, batch_size=64, steps_per_call=4,
            max_dup=4.0)
# The default model on both meshes; a full softmax (psum-reduced dense rows, the softmax split over vocab),
# an optimiser on rows (its per-row state sharded with the tables) and the research path (annotations
# only) on the mixed one.
CASES = [("sgram_neg", "word2vec", "rows", ("data:4", "data:2,vocab:2")),
         ("sgram", "word2vec", "rows", ("data:2,vocab:2",)),
         ("cbow_neg", "adagrad", "rows", ("data:2,vocab:2",)),
         ("cbow_neg", "adagrad", "tables", ("data:2,vocab:2",))]


def max_diff(a, b) -> float:
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b))


def equivalence(out: pathlib.Path, path: str) -> None:
  results, chunks = {}, []
  shard_chunk = distributed.shard_chunk
  distributed.shard_chunk = lambda *a, **k: chunks.append(shard_chunk(*a, **k)) or chunks[-1]
  for model, optimizer, on, meshes in CASES:
    cfg = TrainConfig(model=model, optimizer=optimizer, optimizer_on=on, **TINY)
    vocab, enc = corpus.prepare([path], cfg.min_count, cache_dir=out / "cache")
    ref = loop.fit(cfg, vocab, enc).params
    for spec in meshes:
      got = loop.fit(cfg, vocab, enc, mesh=distributed.make_mesh(spec)).params
      results[f"{model}/{optimizer}-{on}/{spec}"] = max_diff(ref, got) if got[0].shape == ref[0].shape else 1e9
      results[f"{model}/{optimizer}-{on}/{spec} compiles"] = chunks[-1]._cache_size()   # 2 epochs, 1 compile
    if model == "sgram_neg":   # stop after 3 chunks on one mesh, resume on another, then on none
      calls = iter(range(10 ** 6))
      stopper = lambda: next(calls) == 2
      work = out / "resume"
      work.mkdir()
      first = loop.fit(cfg, vocab, enc, workdir=work, should_stop=stopper,
                        mesh=distributed.make_mesh("data:2,vocab:2"))
      calls = iter(range(10 ** 6))
      second = loop.fit(cfg, vocab, enc, workdir=work, resume=True, should_stop=stopper,
                         mesh=distributed.make_mesh("vocab:4"))
      third = loop.fit(cfg, vocab, enc, workdir=work, resume=True)
      statuses = [first.status, second.status, third.status]
      results["resume across meshes"] = max_diff(ref, third.params) if statuses == [
          "interrupted", "interrupted", "finished"] else 1e9
  (out / "equivalence.json").write_text(json.dumps(results))


def multihost(out: pathlib.Path, path: str, reference: bool, coordinator=None, process_id=None) -> None:
  if reference:   # one process holding 4 devices, one corpus block per data shard, as 2 hosts read it
    distributed.default_blocks = lambda mesh: mesh.shape[distributed.DATA]
  else:
    distributed.initialize(coordinator, 2, process_id)
  import jax
  cfg = TrainConfig(model="sgram_neg", **{**TINY, "epochs": 1})
  result = api.train(cfg, [path], None if reference else out / "run", cache_dir=out / f"cache{process_id}",
                     mesh=distributed.make_mesh("data:4"))
  name = "reference" if reference else jax.process_index()
  np.savez(out / f"params_{name}.npz", *result.params, devices=len(jax.devices()),
           local=len(jax.local_devices()))


def locked(out: pathlib.Path, path: str, coordinator, process_id) -> None:
  """One of 2 processes training into OUT/run, which the test holds locked: each writes its error."""
  distributed.initialize(coordinator, 2, process_id)
  try:
    api.train(TrainConfig(model="sgram_neg", **{**TINY, "epochs": 1}), [path], out / "run",
              cache_dir=out / f"cache{process_id}", mesh=distributed.make_mesh("data:4"))
    message = "trained"
  except W2VError as e:
    message = str(e)
  (out / f"error_{process_id}.txt").write_text(message)


if __name__ == "__main__":
  parser = argparse.ArgumentParser()
  parser.add_argument("mode", choices=["equivalence", "reference", "host", "locked"])
  parser.add_argument("out")
  parser.add_argument("corpus")
  parser.add_argument("--coordinator")
  parser.add_argument("--process_id", type=int)
  args = parser.parse_args()
  if args.mode == "equivalence":
    equivalence(pathlib.Path(args.out), args.corpus)
  elif args.mode == "locked":
    locked(pathlib.Path(args.out), args.corpus, args.coordinator, args.process_id)
  else:
    multihost(pathlib.Path(args.out), args.corpus, args.mode == "reference", args.coordinator,
              args.process_id)
