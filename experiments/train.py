"""Train one word2vec model, evaluate it, and write its vectors.

    python -m experiments.train --model=sgram_neg --workdir=runs/demo

(Installed with pip: `python -m w2v_jax.experiments.train ...`, or `w2v-train ...`.)

With no --corpus it trains on the small corpus shipped in w2v_jax/data. It writes into --workdir:
vectors.txt (word2vec text format; --binary adds vectors.bin), vocab.tsv, metrics.jsonl, loss.png,
checkpoint.npz and summary.json. Ctrl-C stops at the next chunk with a checkpoint; --resume continues.
"""
import json

from absl import app, flags

from . import common
from .progress import Progress
from w2v_jax import api, evaluate

common.define_training_flags()
flags.DEFINE_string("workdir", "runs/train", "where the run's files go")
flags.DEFINE_bool("resume", False, "continue the run in --workdir from its checkpoint")
flags.DEFINE_bool("binary", False, "also write vectors.bin in word2vec.c's binary format")
flags.DEFINE_float("checkpoint_every_s", 60.0, "seconds of training between checkpoints (written in "
                   "the background); 0: none but the last")
flags.DEFINE_integer("checkpoint_every", 0, "also checkpoint every this many steps; 0: by time only")
FLAGS = flags.FLAGS


def run():
  """The console script `w2v-train`."""
  app.run(common.run_main(main))


def main(argv):
  mesh = common.mesh_from_flags(FLAGS)   # first: multi-host start-up must precede any JAX work
  common.use_compile_cache(FLAGS.cache_dir, FLAGS.compile_cache)
  common.load_plugins(FLAGS.plugin)
  cfg = common.config_from_flags(FLAGS)
  stop = common.StopFlag()

  def on_start(engine: dict) -> None:   # the run's first lines: which step, and what it trains
    common.print_engine(engine)
    print(f"training {cfg.model} (dim {cfg.dim}, window {cfg.window}, neg {cfg.neg}, epochs {cfg.epochs}, "
          f"lr {cfg.learning_rate}) on {', '.join(FLAGS.corpus or [str(api.DEFAULT_CORPUS)])}", flush=True)

  result = api.train(cfg, FLAGS.corpus, FLAGS.workdir, resume=FLAGS.resume, binary=FLAGS.binary,
                     cache_dir=FLAGS.cache_dir, on_log=Progress(), should_stop=stop,
                     checkpoint_every=FLAGS.checkpoint_every,
                     checkpoint_every_s=FLAGS.checkpoint_every_s, mesh=mesh, on_start=on_start,
                     huge_pages=FLAGS.huge_pages, on_notice=common.print_notice)
  s = result.summary
  if s["replaced_chars"]:
    print(f"warning: {s['replaced_chars']} undecodable byte sequences in the corpus were replaced by U+FFFD")
  if s["status"] == "interrupted":
    print(f"interrupted: checkpoint saved in {FLAGS.workdir}; rerun with --resume to continue")
  final = "n/a" if s["final_loss"] is None else f"{s['final_loss']:.4f}"
  if FLAGS.resume and not result.history and s["status"] == "finished":
    print(f"nothing left to train: the checkpoint in {FLAGS.workdir} had finished all {cfg.epochs} epochs; the "
          f"files are written from it (final loss {final} per prediction)")
  else:
    print(f"vocabulary {s['vocab_size']:,} words, corpus {s['corpus_words']:,} words; trained in "
          f"{s['train_seconds']:.1f} s ({s['compile_seconds']:.1f} s compiling"
          f"{', this session: resumed from its checkpoint' if FLAGS.resume else ''}), "
          f"{s['words_per_sec'] / 1e3:,.0f}k words/s, final loss {final} per prediction")
  print(f"tables: {s['pages']}")
  if s["threads"]:
    print(f"threads: {s['threads']}")
  an, ws = result.evaluation["analogy"], result.evaluation["word_similarity"]
  print(f"analogy ({cfg.analogy_method}, top 30k words): {100 * an['accuracy']:.2f}% of {an['n_total']:,} "
        f"questions (semantic {100 * an['semantic']:.2f}%, syntactic {100 * an['syntactic']:.2f}%; "
        f"{an['n_skipped']:,} skipped as out of vocabulary)")
  for name, r in (("WS-353", ws), ("SimLex-999", result.evaluation["simlex999"])):
    print(f"{name}: Spearman {r['spearman']:.3f}, Pearson {r['pearson']:.3f} "
          f"({100 * r['oov_rate']:.1f}% of pairs out of vocabulary)")
  vectors = api.export_vectors(result.params, cfg.eval_with, result.model)
  for word in api.probe_words(result.vocab):
    near = evaluate.nearest(result.vocab.words, vectors, word, k=6)
    print(f"  {word:>10}: " + ", ".join(f"{w} ({c:.2f})" for w, c in near))
  where = "vectors.txt" + (", vectors.bin" if FLAGS.binary else "")
  print(f"wrote {where}, vocab.tsv, metrics.jsonl, loss.png, summary.json, checkpoint.npz to {FLAGS.workdir}")
  print(json.dumps({k: s[k] for k in ("analogy_accuracy", "ws353_spearman", "simlex999_spearman",
                                       "words_per_sec", "final_loss")}))
  return 130 if s["status"] == "interrupted" else 0


if __name__ == "__main__":
  run()
