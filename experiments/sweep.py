"""Train a grid of word2vec runs and tabulate and plot how the settings change quality and speed.

    python -m experiments.sweep --corpus=w2v_jax/data/small_corpus.txt.gz --models=sgram_neg,cbow_neg --windows=2,5,10 --negs=2,5,15 --dims=50,100,300 --epochs=1 --workdir=runs/sweep

Every run gets its own directory in --workdir, named from its settings (sgram_neg-w5-k5-d100), holding the
training job's files. The fixed training flags (--epochs --min_count --sample --lr --batch_size --seed
--ns_exponent --reduced_window --eval_with --analogy_method ...) apply to every run. Full-softmax models
(cbow, sgram) draw no negatives: they run once per window and dim, with neg recorded as 0. The sweep writes
results.csv, results.jsonl and results.md (rebuilt after each run) and plots/*.png. Rerunning the same
command skips finished runs and resumes an interrupted one; Ctrl-C stops at the current run's checkpoint.
"""
from absl import app, flags
import jax

from . import common, sweep_grid
from .progress import Progress
from w2v_jax import models
from w2v_jax.errors import W2VError

common.define_training_flags(sweep=True)
flags.DEFINE_list("models", ["sgram_neg"], "models to train: built-in ones (cbow, cbow_neg, sgram, sgram_neg, "
                  "cbow_hs, sgram_hs) or ones a --plugin file registers")
flags.DEFINE_list("windows", ["5"], "window sizes W, comma-separated")
flags.DEFINE_list("negs", ["5"], "negatives k, comma-separated (ignored by cbow and sgram)")
flags.DEFINE_list("dims", ["100"], "embedding dimensions d, comma-separated")
flags.DEFINE_string("workdir", "runs/sweep", "where the runs, results and plots go")
flags.DEFINE_float("checkpoint_every_s", 60.0, "seconds of training between checkpoints (written in "
                   "the background); 0: none but the last")
flags.DEFINE_integer("checkpoint_every", 0, "also checkpoint every this many steps; 0: by time only")
flags.DEFINE_bool("progress", True, "show each run's training progress")
FLAGS = flags.FLAGS


def _ints(flag: str, items: list[str]) -> list[int]:
  """A list flag's values as integers, or one W2VError line naming the bad item."""
  if not items:
    raise W2VError(f"--{flag} is empty: give at least one value, e.g. --{flag}=2,5")
  values = []
  for item in items:
    try:
      values.append(int(item))
    except ValueError:
      raise W2VError(f"--{flag}: {item!r} is not an integer (give a comma-separated list such as "
                     f"--{flag}=2,5,10)") from None
  return values


def _report(e: dict) -> None:
  head = f"[{e['index'] + 1}/{e['total']}] {e['name']}"
  if e["event"] == "skip":
    print(f"{head}: finished earlier, skipped", flush=True)
  elif e["event"] in ("start", "resume"):
    print(f"{head}: {'resuming from its checkpoint' if e['event'] == 'resume' else 'training'}", flush=True)
  elif e["event"] == "interrupted":
    print(f"{head}: stopped, checkpoint saved", flush=True)
  elif e["event"] == "done":
    s = e["summary"]
    rho = "n/a" if s["ws353_spearman"] is None else f"{s['ws353_spearman']:.3f}"   # None: no WS-353 pair
    simlex = "n/a" if s.get("simlex999_spearman") is None else f"{s['simlex999_spearman']:.3f}"
    print(f"{head}: analogy {100 * s['analogy_accuracy']:.2f}%, WS-353 rho {rho}, SimLex-999 rho {simlex}, "
          f"{s['words_per_sec'] / 1e3:,.0f}k words/s, {s['train_seconds']:.1f} s", flush=True)


def run():
  """The console script `w2v-sweep`."""
  app.run(common.run_main(main))


def main(argv):
  mesh = common.mesh_from_flags(FLAGS)   # first: multi-host start-up must precede any JAX work
  common.use_compile_cache(FLAGS.cache_dir, FLAGS.compile_cache)
  common.load_plugins(FLAGS.plugin)
  if jax.process_count() > 1:
    raise W2VError("experiments.sweep runs on one host (any --mesh over its devices); on several hosts "
                   "run experiments.train once per grid point")
  if not FLAGS.models:
    raise W2VError("--models is empty: give at least one of " + ", ".join(models.names()))
  grid = {"model": [m.strip() for m in FLAGS.models], "window": _ints("windows", FLAGS.windows),
          "neg": _ints("negs", FLAGS.negs), "dim": _ints("dims", FLAGS.dims)}
  base = common.config_from_flags(FLAGS)
  plan = sweep_grid.expand(base, grid)   # every point checked before anything runs
  print(f"sweep of {len(plan)} runs in {FLAGS.workdir}", flush=True)
  stop = common.StopFlag()
  rows = sweep_grid.run_grid(base, grid, FLAGS.corpus, FLAGS.workdir, cache_dir=FLAGS.cache_dir,
                        on_event=_report, on_log=Progress() if FLAGS.progress else None, should_stop=stop,
                        checkpoint_every=FLAGS.checkpoint_every,
                        checkpoint_every_s=FLAGS.checkpoint_every_s, mesh=mesh, on_start=common.print_engine,
                        huge_pages=FLAGS.huge_pages, on_notice=common.print_notice)
  print(f"{len(rows)} of {len(plan)} runs finished; results.csv, results.jsonl, results.md and plots/ "
        f"are in {FLAGS.workdir}")
  if stop():
    print("interrupted: rerun the same command to resume (finished runs are skipped, the interrupted one "
          "continues from its checkpoint)")
    return 130
  return 0


if __name__ == "__main__":
  run()
