"""Flags shared by train.py and sweep.py, plugins, and the one place that turns errors into one line."""
import importlib.util
import pathlib
import signal
import sys
import traceback

from absl import flags, logging
import jax

from w2v_jax import api, distributed, xla_cache
from w2v_jax.config import CHOICES, TrainConfig
from w2v_jax.errors import W2VError

_D = TrainConfig()


def define_training_flags(sweep: bool = False) -> None:
  """The fixed settings of a run; in a sweep, model/window/neg/dim are lists and defined there."""
  flags.DEFINE_multi_string("corpus", None, "corpus file(s) or directory; .gz and text8 files work; "
                            "default: the small corpus shipped in w2v_jax/data")
  flags.DEFINE_multi_string("plugin", None, "Python file(s) to import first, e.g. one that calls "
                            "w2v_jax.models.register(...); then --model(s) can name what it registers")
  if not sweep:
    flags.DEFINE_string("model", _D.model, "cbow, cbow_neg, sgram, sgram_neg, cbow_hs, sgram_hs, "
                        "sgram_subword_neg, cbow_subword_neg (fastText), or a model registered by a --plugin file")
    flags.DEFINE_integer("dim", _D.dim, "embedding dimension D")
    flags.DEFINE_integer("window", _D.window, "maximum window size W (C = 2W context slots)")
    flags.DEFINE_integer("neg", _D.neg, "negatives K per example (negative-sampling models)")
  flags.DEFINE_integer("epochs", _D.epochs, "passes over the corpus")
  flags.DEFINE_integer("min_count", _D.min_count, "drop words rarer than this")
  flags.DEFINE_integer("max_vocab_size", None, "keep at most this many words (most frequent)")
  flags.DEFINE_float("sample", _D.sample, "subsampling threshold s; 0 switches it off")
  flags.DEFINE_enum("subsampling", _D.subsampling, CHOICES["subsampling"], "dirty: drop subsampled words "
                    "before windowing (word2vec.c); clean: keep their positions (Levy et al. 2015)")
  flags.DEFINE_float("lr", None, "starting learning rate; default the model's (0.025 skip-gram, 0.05 CBOW, "
                     "0.0125 sgram)")
  flags.DEFINE_integer("batch_size", _D.batch_size, "centers per step B")
  flags.DEFINE_integer("seed", _D.seed, "seed: same flags + seed give identical vectors on the CPU")
  flags.DEFINE_float("ns_exponent", _D.ns_exponent, "noise distribution exponent (context smoothing)")
  flags.DEFINE_bool("reduced_window", _D.reduced_window, "draw each center's window b from 1..W")
  flags.DEFINE_integer("min_n", _D.min_n, "subword models: shortest character n-gram of '<word>'")
  flags.DEFINE_integer("max_n", _D.max_n, "subword models: longest character n-gram of '<word>'")
  flags.DEFINE_integer("buckets", _D.buckets, "subword models: hash buckets of the n-grams (extra rows of W_in)")
  flags.DEFINE_enum("eval_with", _D.eval_with, CHOICES["eval_with"], "vectors: W_in, or W_in + W_out")
  flags.DEFINE_enum("analogy_method", _D.analogy_method, CHOICES["analogy_method"], "analogy rule")
  flags.DEFINE_enum("softmax_prior", _D.softmax_prior, CHOICES["softmax_prior"], "cbow and sgram: a fixed "
                    "log-unigram output bias (so vectors carry PMI, not frequency), or none (docs 000/001)")
  flags.DEFINE_enum("cbow_context_grad", _D.cbow_context_grad, CHOICES["cbow_context_grad"],
                    "CBOW context update: word2vec.c/gensim's (sum) or the exact gradient (mean)")
  flags.DEFINE_enum("optimizer", _D.optimizer, CHOICES["optimizer"],
                    "word2vec: word2vec's sparse SGD (fast); others: that optimiser, on the touched rows or "
                    "on the whole tables (--optimizer_on)")
  flags.DEFINE_enum("optimizer_on", _D.optimizer_on, CHOICES["optimizer_on"], "rows: per-row state gathered and "
                    "scattered with the rows, O(rows) a step; tables: jax.grad + optax on the whole [V, D] tables")
  flags.DEFINE_integer("steps_per_call", _D.steps_per_call, "steps per jitted call (lax.scan)")
  flags.DEFINE_enum("sgram_neg_form", _D.sgram_neg_form, CHOICES["sgram_neg_form"],
                    "sgram_neg kernel: word2vec.c's orientation with window-shared negatives (swapped), "
                    "the literal model (shared), or K negatives per pair (pairs)")
  flags.DEFINE_bool("hogwild", _D.hogwild, "cbow_neg/sgram_neg on the native kernels: word2vec.c's update, "
                    "threads apply each window at once without waiting (faster; not bit-reproducible)")
  flags.DEFINE_string("max_dup", _D.max_dup, "cap on a word's summed updates in one step: a number, 0 "
                      "(off), or auto (32 up to --neg=5, 32*6/(neg+1) above)")
  flags.DEFINE_enum("layout", _D.layout, CHOICES["layout"], "a step's batch: span "
                    "(each corpus position's input row once a step), buckets (grouped by window size: no "
                    "padding), batch ([B, 2W]); auto picks the fastest for the model and backend")
  flags.DEFINE_string("cache_dir", None, "encoded-corpus cache; default $W2V_JAX_CACHE or ~/.cache/w2v_jax")
  flags.DEFINE_bool("compile_cache", True, "keep XLA's compiled training steps under <cache_dir>/xla, so a "
                    "rerun or a sweep's next run of the same shapes loads them instead of compiling")
  flags.DEFINE_bool("huge_pages", None, "on the CPU, make the tables on 2 MB transparent huge pages (a resumed "
                    "run's are copied there): faster steps at large vocabularies (docs/results.md, Huge pages; the "
                    "same bits). Unset: auto, on for 512 MB of tables or more (V >= ~670k at dim 100); "
                    "--huge_pages / --nohuge_pages force it. The run says how much of them the kernel put "
                    "there, or why none")
  # Devices and hosts: runtime settings, not part of the config, so a run can resume on another mesh.
  flags.DEFINE_string("mesh", None, "devices to train on, as axis:size over the devices JAX sees, e.g. "
                      "data:4 (data parallel) or data:2,vocab:2 (tables split by rows); default one device")
  flags.DEFINE_string("coordinator_address", None, "multi-host: host:port of process 0's coordinator, "
                      "the same for every process; 'auto' on a TPU pod slice or a SLURM/MPI cluster")
  flags.DEFINE_integer("num_processes", None, "multi-host: how many processes (one per host) train")
  flags.DEFINE_integer("process_id", None, "multi-host: this process's index, 0..num_processes-1")


def parse_max_dup(text: str) -> float | str | None:
  """--max_dup's value: "auto", None for 0 (no cap), or the number; any other text is passed on as given,
  for TrainConfig.validate to refuse in one line."""
  if text is None or text.strip().lower() == "auto":
    return "auto"
  try:
    value = float(text)
  except ValueError:
    return text
  return None if value == 0 else value


def config_from_flags(FLAGS, **overrides) -> TrainConfig:
  """A validated TrainConfig from the flags (overrides win: a sweep's grid point)."""
  names = ["epochs", "min_count", "max_vocab_size", "sample", "subsampling", "lr", "batch_size", "seed", "ns_exponent",
           "reduced_window", "eval_with", "analogy_method", "cbow_context_grad", "optimizer", "optimizer_on", "softmax_prior",
           "steps_per_call", "sgram_neg_form", "layout", "hogwild", "min_n", "max_n", "buckets"]
  values = {n: getattr(FLAGS, n) for n in names}
  values["max_dup"] = parse_max_dup(FLAGS.max_dup)
  for n in ("model", "dim", "window", "neg"):
    if n in FLAGS:
      values[n] = getattr(FLAGS, n)
  values.update(overrides)
  return TrainConfig(**values)


def load_plugins(paths: list[str] | None) -> None:
  """Imports each --plugin file as a module, so that what it registers (models.register) is known."""
  for path in paths or []:
    file = pathlib.Path(path).expanduser()
    if file.is_dir():
      raise W2VError(f"--plugin={path} is a directory; give the path of a Python file in it")
    if not file.is_file():
      raise W2VError(f"--plugin={path}: no such file; give the path of a Python file")
    name = f"w2v_jax_plugin_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None:   # not a .py file: importlib has no loader for it
      raise W2VError(f"--plugin={path}: not a Python file; give a .py file that calls models.register")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
      spec.loader.exec_module(module)
    except W2VError as e:
      raise W2VError(f"--plugin={path}: {e}") from None
    except Exception as e:   # a user's file: its first error, in one line, not our traceback
      line = next((f.lineno for f in reversed(traceback.extract_tb(e.__traceback__))
                   if f.filename == str(file)), None)
      raise W2VError(f"--plugin={path}" + (f", line {line}" if line else "") +
                     f": {type(e).__name__}: {e}") from None


def engine_line(e: dict) -> str:
  """The line that says which step runs, and why (api.train's on_start, summary["engine"])."""
  kernels = "off"
  if e["native"]:
    kernels = "on" + (f", -march={e['march']}" if e.get("march") else "")
    if e.get("march_resolved") not in (None, e.get("march")):
      kernels += f" ({e['march_resolved']})"
    if e.get("vector_bits"):
      kernels += f", {e['vector_bits']}-bit registers"
  return f"step: {e['step']} (native kernels: {kernels}) -- {e['reason']}"


def print_engine(e: dict) -> None:
  if e.get("build_note"):   # a damaged cached library of the native kernels, rebuilt (native/builder.py)
    print(f"note: {e['build_note']}", flush=True)
  print(engine_line(e), flush=True)
  if e.get("memory"):
    print(f"warning: {e['memory']}", flush=True)


def mesh_from_flags(FLAGS):
  """Starts the multi-host runtime if asked, then the --mesh Mesh (or None); call it before any JAX work.

  With several processes and no --mesh, the mesh is data-parallel over every device.
  """
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  if FLAGS.mesh is None and jax.process_count() > 1:
    return distributed.make_mesh(f"data:{jax.device_count()}")
  return None if FLAGS.mesh is None else distributed.make_mesh(FLAGS.mesh)


class StopFlag:
  """Set by SIGINT/SIGTERM: training stops at the next chunk boundary and writes a checkpoint."""

  def __init__(self):
    self.stopped = False
    signal.signal(signal.SIGINT, self._set)
    signal.signal(signal.SIGTERM, self._set)

  def _set(self, signum, frame):
    if self.stopped:   # a second Ctrl-C means now
      raise KeyboardInterrupt
    self.stopped = True

  def __call__(self) -> bool:
    return self.stopped


def use_compile_cache(cache_dir: str | None, enabled: bool = True) -> None:
  """JAX's persistent compilation cache under <cache_dir>/xla (--compile_cache): the same program (model,
  shapes, layout, backend, jaxlib) compiles once per machine; later runs load it (the training chunk:
  0.7 s of compiling -> 0.2 s here). Only compilations of 0.2 s or more are kept. Its entries are checked
  when read and written atomically (w2v_jax/xla_cache.py): a damaged one is compiled again, in one line."""
  if enabled:
    root = pathlib.Path(cache_dir) if cache_dir else api.default_cache_dir()
    jax.config.update("jax_compilation_cache_dir", str(root / "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    try:
      xla_cache.install(root / "xla", print_notice)
    except OSError as e:   # an unusable cache directory: the run goes on without the cache
      print_notice(f"no compiled-step cache in {root / 'xla'} ({e.strerror or e})")
      jax.config.update("jax_enable_compilation_cache", False)


def print_notice(message: str) -> None:
  """What a run mended on its way (a lock left by a run that died, a damaged cache entry): one line."""
  print(f"note: {message}", flush=True)


def fail(message: str, code: int = 2):
  """The one way a script reports bad input: a line on stderr, no traceback."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def run_main(main):
  """Wraps an absl main so W2VError (and a missing file) end as one line on stderr, as do positional
  arguments (every script takes flags only)."""
  def wrapped(argv):
    logging.set_verbosity(logging.WARNING)   # absl's INFO lines (e.g. JAX probing for a TPU) are noise here
    if len(argv) > 1:
      fail(f"unexpected arguments {argv[1:]}; flags take the form --name=value")
    try:
      return main(argv)
    except W2VError as e:
      fail(str(e))
    except OSError as e:
      fail(f"{e.strerror or e}: {e.filename} (check the path and its permissions)" if e.filename else str(e))
    except MemoryError:
      fail("out of memory: lower --dim, --batch_size or --steps_per_call, or shrink the vocabulary "
           "(--min_count, --max_vocab_size)")
    except Exception as e:   # noqa: BLE001  XLA's out-of-memory error, whatever its class in this jax version
      if "RESOURCE_EXHAUSTED" not in str(e):
        raise
      first = str(e).strip().splitlines()[0]
      fail(f"out of memory ({first}): lower --dim, --batch_size or --steps_per_call, or shrink the vocabulary "
           "(--min_count, --max_vocab_size)")
  return wrapped
