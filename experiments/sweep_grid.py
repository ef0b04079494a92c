"""Grids of training runs: expansion, one directory per run, resumption, a lock, and results tables.

    from experiments import sweep_grid          # installed: from w2v_jax.experiments import sweep_grid
    from w2v_jax import TrainConfig
    rows = sweep_grid.run_grid(TrainConfig(epochs=1), {"model": ["sgram_neg"], "window": [2, 5, 10],
                          "neg": [2, 5, 15], "dim": [50, 100, 300]}, corpus="text.txt.gz", workdir="runs/s")

Grid keys are TrainConfig field names; the grid is their product. Each run trains with `api.train` in
workdir/<name>, named from its settings (`sgram_neg-w5-k5-d100`; a swept field other than these four is
appended as `-<field><value>`). Full-softmax models (cbow, sgram) draw no negatives, so their `neg` axis
collapses to one run with neg = 0 (named `sgram-w5-d100`). Rerunning skips the runs whose summary.json says
finished, resumes interrupted ones from their checkpoint, and retrains the rest; results.csv,
results.jsonl and results.md (finished runs of the grid, in grid order) are rebuilt after every run, and
plots/*.png at the end. A workdir is locked (workdir/.lock) while a sweep writes to it, and each run's
directory (workdir/<name>/.lock) from before its run.json is written until its run ends.
"""
import csv
import dataclasses
import types
import io
import itertools
import json
import os
import pathlib
import typing
from typing import Callable, Sequence

from w2v_jax.atomic import read_json, write_atomic
from w2v_jax import api, batches, checkpoint, disk, models
from w2v_jax import workdir_lock as w2v_workdir_lock
from w2v_jax import corpus as corpus_lib
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError

SHORT = {"window": "w", "neg": "k", "dim": "d"}  # name parts, in this order after the model
METRICS = ("analogy_accuracy", "analogy_semantic", "analogy_syntactic", "ws353_spearman", "simlex999_spearman",
           "words_per_sec",
           "train_seconds", "final_loss", "compile_seconds", "analogy_questions", "ws353_oov_rate",
           "vocab_size", "corpus_words")
RUN_RECORD = "run.json"  # what a run directory was started with: its config and corpus


def uses_negatives(model: str) -> bool:
  return models.get(model).uses_negatives


def _type_ok(value, annotation) -> bool:
  """Whether a grid value fits a TrainConfig field's annotation (int for float is fine, bool is not int)."""
  for kind in typing.get_args(annotation) or (annotation,):
    if value is None and kind is type(None):
      return True
    if isinstance(value, bool) != (kind is bool):
      continue
    if isinstance(value, kind) or (kind is float and isinstance(value, int)):
      return True
  return False


def check_grid(grid: dict[str, Sequence]) -> None:
  """Raises W2VError for an empty grid, an unknown field, an empty list or a value of the wrong type."""
  fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
  if not grid:
    raise W2VError("the grid is empty: give at least one setting to sweep, e.g. --windows=2,5")
  for key, values in grid.items():
    if key not in fields:
      raise W2VError(f"cannot sweep {key!r}: not a TrainConfig setting (these are: {', '.join(fields)})")
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
      raise W2VError(f"the list of {key} values is empty or not a list: give at least one value")
    for v in values:
      if not _type_ok(v, fields[key]):
        raise W2VError(f"bad {key} value {v!r}: expected {getattr(fields[key], '__name__', fields[key])}")


def run_name(cfg: TrainConfig, swept: Sequence[str] = ()) -> str:
  """`sgram_neg-w5-k5-d100` (no k part for full-softmax models), then any other swept field."""
  parts = [cfg.model] + [f"{s}{getattr(cfg, key)}" for key, s in SHORT.items()
                         if key != "neg" or uses_negatives(cfg.model)]
  parts += [f"{key}{getattr(cfg, key)}" for key in swept if key not in SHORT and key != "model"]
  return "-".join("".join(c if c.isalnum() or c in "._+" else "_" for c in p) for p in parts)


def expand(base: TrainConfig, grid: dict[str, Sequence]) -> list[tuple[str, TrainConfig]]:
  """The grid's runs as (name, validated config), in product order (first key outermost), no repeats."""
  check_grid(grid)
  plan: dict[str, TrainConfig] = {}
  for values in itertools.product(*grid.values()):
    point = dict(zip(grid, values))
    try:   # (a TrainConfig is checked where it is made)
      cfg = dataclasses.replace(base, **point)
      if not uses_negatives(cfg.model):
        cfg = dataclasses.replace(cfg, neg=0)   # the neg axis is void for a full softmax: one run
    except W2VError as e:   # named as its run would be
      fields = types.SimpleNamespace(**{**dataclasses.asdict(base), **point})
      raise W2VError(f"sweep point {run_name(fields, list(grid))}: {e}") from None
    plan.setdefault(run_name(cfg, list(grid)), cfg)
  return list(plan.items())


def workdir_lock(workdir: pathlib.Path, on_notice: Callable[[str], None] | None = None) -> w2v_workdir_lock.Lock:
  """The sweep's lock on workdir/.lock (a context manager), or W2VError at once, naming the process that
  holds it, where another sweep or run holds it (w2v_jax/workdir_lock.py)."""
  return w2v_workdir_lock.acquire(workdir, kind="sweep or run", on_notice=on_notice)


def _run_dir_lock(run_dir: pathlib.Path, name: str, on_notice) -> w2v_workdir_lock.Lock:
  """The lock of one run's directory (made if missing), or W2VError in one line naming the run and the
  process that holds it (a run started there by hand, say)."""
  try:
    return w2v_workdir_lock.acquire(run_dir, on_notice=on_notice)
  except W2VError as e:
    raise W2VError(f"run {name}: {e}") from None


def _prepare_run_dir(run_dir: pathlib.Path, name: str, cfg: TrainConfig, corpus_files: list[str]) -> bool:
  """Records the run's settings in run_dir (locked by the caller) and removes what an unfinished earlier
  try left there; whether the run resumes from its checkpoint."""
  resume = _resumable(run_dir, cfg)
  _write_atomic(run_dir / RUN_RECORD, json.dumps({"name": name, "config": json.loads(cfg.to_json()),
                                                  "corpus": corpus_files,
                                                  "corpus_stat": corpus_stats(corpus_files)}, indent=2) + "\n")
  if not resume:   # this sweep's own run directory: what an unfinished earlier try left goes
    for stale in ("summary.json", "vectors.txt", "vectors.bin", "metrics.jsonl"):
      (run_dir / stale).unlink(missing_ok=True)
  return resume


def _config_diff(recorded: dict, cfg: TrainConfig) -> list[str]:
  old = TrainConfig.from_dict(recorded)   # fields added since it was written take their defaults
  return [f"{f.name}={getattr(old, f.name)!r} there, {getattr(cfg, f.name)!r} here"
          for f in dataclasses.fields(TrainConfig) if getattr(old, f.name) != getattr(cfg, f.name)]


def corpus_stats(corpus_files: list[str]) -> list[list[int]]:
  """Each corpus file's size and modification time: a file rewritten in place is another corpus."""
  return [[os.stat(f).st_size, os.stat(f).st_mtime_ns] for f in corpus_files]


def check_existing(run_dir: pathlib.Path, cfg: TrainConfig, corpus_files: list[str]) -> None:
  """Raises W2VError if run_dir already holds a run of other settings or another corpus (other files, or the
  same files changed since: their sizes and times are recorded)."""
  record = read_json(run_dir / RUN_RECORD) or {}
  summary = read_json(run_dir / "summary.json") or {}
  recorded = record.get("config") or summary.get("config")
  diff = [] if recorded is None else _config_diff(recorded, cfg)
  stats = corpus_stats(corpus_files)
  if record.get("corpus") not in (None, corpus_files):
    diff.append(f"corpus {', '.join(record['corpus'])} there")
  elif record.get("corpus_stat") not in (None, stats):
    changed = [f for f, old, new in zip(corpus_files, record["corpus_stat"], stats) if old != new]
    diff.append(f"{', '.join(changed)} changed since that run (size or modification time)")
  if diff:
    raise W2VError(f"{run_dir} holds a run with other settings ({'; '.join(diff)}): use another --workdir, "
                   "or delete that directory")


def finished_summary(run_dir: pathlib.Path) -> dict | None:
  summary = read_json(run_dir / "summary.json")
  return summary if summary is not None and summary.get("status") == "finished" else None


def _resumable(run_dir: pathlib.Path, cfg: TrainConfig) -> bool:
  """A checkpoint short of the end resumes; one at the end without a summary (its timing lost) or none
  means training again from scratch."""
  if not (run_dir / checkpoint.FILENAME).exists():
    return False
  saved = checkpoint.load(run_dir)
  if saved is not None and saved[1].epoch < cfg.epochs:
    return True
  (run_dir / checkpoint.FILENAME).unlink()
  return False


def result_row(name: str, summary: dict) -> dict:
  """One results row: the run's name, every setting (lr resolved), then the metrics."""
  cfg = TrainConfig.from_dict(summary["config"])
  settings = dataclasses.asdict(cfg)
  settings["lr"] = cfg.learning_rate
  return {"name": name, **settings, **{m: summary.get(m) for m in METRICS}}


def _write_atomic(path: pathlib.Path, text: str) -> None:
  write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def _fmt(key: str, value) -> str:
  if value is None:
    return "–"
  if key.startswith("analogy_") and key != "analogy_questions":
    return f"{100 * value:.2f}"
  if key in ("ws353_spearman", "simlex999_spearman"):
    return f"{value:.3f}"
  if key == "words_per_sec":
    return f"{value / 1e3:,.0f}"
  if key in ("train_seconds", "final_loss"):
    return f"{value:.1f}" if key == "train_seconds" else f"{value:.4f}"
  return str(value)


MD_METRICS = {"analogy_accuracy": "analogy %", "analogy_semantic": "semantic %",
              "analogy_syntactic": "syntactic %", "ws353_spearman": "WS-353 ρ", "simlex999_spearman": "SimLex ρ",
              "words_per_sec": "k words/s", "train_seconds": "train s", "final_loss": "loss/prediction"}


def markdown_table(rows: list[dict], swept: Sequence[str]) -> str:
  """A results.md: the settings shared by every row in one line, then a table of the ones that differ."""
  if not rows:
    return "No finished runs yet.\n"
  settings = [f.name for f in dataclasses.fields(TrainConfig)]
  varying = [k for k in swept if k in settings] + [
      k for k in settings if k not in swept and len({repr(r[k]) for r in rows}) > 1]
  fixed = [f"{k}={rows[0][k]}" for k in settings if k not in varying]
  lines = [f"Fixed settings: {', '.join(fixed)}.", "",
           "| " + " | ".join(varying + list(MD_METRICS.values())) + " |",
           "|" + "---|" * len(varying) + "--:|" * len(MD_METRICS)]
  for r in rows:
    lines.append("| " + " | ".join([_fmt(k, r[k]) for k in varying] + [_fmt(k, r[k]) for k in MD_METRICS])
                 + " |")
  return "\n".join(lines) + "\n"


def write_results(workdir: pathlib.Path, rows: list[dict], swept: Sequence[str]) -> None:
  """results.csv, results.jsonl and results.md, each replaced atomically."""
  buf = io.StringIO()
  if rows:
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
  _write_atomic(workdir / "results.csv", buf.getvalue())
  _write_atomic(workdir / "results.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
  _write_atomic(workdir / "results.md", markdown_table(rows, swept))


def collect_rows(workdir: pathlib.Path, plan: list[tuple[str, TrainConfig]]) -> list[dict]:
  """Rows of the plan's finished runs, read back from their summary.json files."""
  rows = []
  for name, _ in plan:
    if (summary := finished_summary(workdir / name)) is not None:
      rows.append(result_row(name, summary))
  return rows


def run_grid(base: TrainConfig, grid: dict[str, Sequence], corpus, workdir, *, cache_dir=None,
             on_event: Callable[[dict], None] | None = None, on_log: Callable[[dict], None] | None = None,
             should_stop: Callable[[], bool] = lambda: False, checkpoint_every: int = 0,
             checkpoint_every_s: float = 60.0,
             log_every_s: float = 2.0, make_plots: bool = True, mesh=None,
             on_start: Callable[[dict], None] | None = None, huge_pages: bool | None = None,
             on_notice: Callable[[str], None] | None = None) -> list[dict]:
  """Trains every run of the grid not yet finished in workdir; returns the results rows (finished runs).

  Everything is checked before any training: the grid, the lock, the corpus (prepared once into
  cache_dir, which every run then reads), and that no run directory holds other settings. on_event gets
  {"event": "skip" | "start" | "resume" | "done" | "interrupted", "index", "total", "name", "run_dir"}
  (and "summary" with "done"/"interrupted"); on_log gets each run's training log records. When
  should_stop() turns true the run in flight stops at its next checkpoint and no other run starts.
  on_notice gets the one-line notes of what was mended (api.train's).
  """
  plan = expand(base, grid)
  workdir = pathlib.Path(workdir)
  cache_dir = api.default_cache_dir() if cache_dir is None else cache_dir
  paths = [api.DEFAULT_CORPUS] if corpus is None else corpus
  corpus_files = [str(p.resolve()) for p in corpus_lib.resolve_paths(paths)]
  emit = on_event or (lambda event: None)
  with workdir_lock(workdir, on_notice):
    vocab_sizes = {}
    for _, cfg in plan:
      key = (cfg.min_count, cfg.max_vocab_size)
      if key not in vocab_sizes:
        vocab_sizes[key] = len(corpus_lib.prepare(paths, *key, cache_dir, on_notice=on_notice)[0].words)
    for name, cfg in plan:
      batches.check_settings(batch_size=cfg.batch_size, window=cfg.window, neg=cfg.neg,
                             vocab_size=vocab_sizes[(cfg.min_count, cfg.max_vocab_size)])
      check_existing(workdir / name, cfg, corpus_files)
    swept = list(grid)
    write_results(workdir, collect_rows(workdir, plan), swept)
    for i, (name, cfg) in enumerate(plan):
      run_dir = workdir / name
      event = {"index": i, "total": len(plan), "name": name, "run_dir": str(run_dir)}
      if finished_summary(run_dir) is not None:
        emit({"event": "skip", **event})
        continue
      if should_stop():
        break
      # the run directory's lock before anything there is written or removed (a live run of its own may
      # hold it), lent to api.train, so that no other process can enter in between
      with _run_dir_lock(run_dir, name, on_notice) as run_lock, run_lock.lend():
        resume = _prepare_run_dir(run_dir, name, cfg, corpus_files)
        emit({"event": "resume" if resume else "start", **event})
        try:
          result = api.train(cfg, paths, run_dir, resume=resume, cache_dir=cache_dir, on_log=on_log,
                             should_stop=should_stop, checkpoint_every=checkpoint_every,
                             checkpoint_every_s=checkpoint_every_s,
                             log_every_s=log_every_s, mesh=mesh, on_start=on_start, huge_pages=huge_pages,
                             on_notice=on_notice)
        except disk.NoSpace as e:   # the sweep's own way on: its command again
          kept = api.kept_after_no_space(run_dir, cfg.epochs, "rerun the same command")
          raise W2VError(f"run {name}: {e.what}; {kept}") from None
        except W2VError as e:
          raise W2VError(f"run {name}: {e}") from None
      write_results(workdir, collect_rows(workdir, plan), swept)
      interrupted = result.summary["status"] == "interrupted"
      emit({"event": "interrupted" if interrupted else "done", **event, "summary": result.summary})
      if interrupted:
        break
    rows = collect_rows(workdir, plan)
    if make_plots:
      from . import sweep_plots   # matplotlib only when plots are drawn
      sweep_plots.sweep_plots(rows, swept, workdir / "plots")
  return rows
