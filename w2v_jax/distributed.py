"""Training over many devices and hosts: a `data` x `vocab` jax.sharding.Mesh, and the sharded chunk.

Mesh. `parse_mesh("data:2,vocab:2")` -> {"data": 2, "vocab": 2}; `make_mesh` lays jax.devices() (every
process's, in a multi-host run) out as an [Nd, Nv] Mesh with axes ("data", "vocab"); a missing axis has size 1.

Data parallel (fast path). The global batch of B centers is split into Nd shards of B/Nd. Shard d computes its
row gradients (idx_d, rows_d) with the model's closed-form row-grad function, `all_gather` over `data`
concatenates the Nd shards' rows, and every replica scatter-adds all of them:
    W  <-  W - lr * sum_d scatter(idx_d, rows_d)
which is the single-device update (the same rows, summed in another order): replicas stay identical and a step
moves Nd * M * D floats (M rows per shard), never a dense [V, D] gradient. The full-softmax models (cbow, sgram)
have dense output rows (M_out = V); those are psum-reduced instead. The research path (jax.grad + optax) is
dense anyway: it is partitioned by sharding annotations alone, and XLA all-reduces its [V, D] gradients.

Vocab parallel. W_in and W_out, padded to V' rows (a multiple of Nv), are split by rows across `vocab`
(PartitionSpec("vocab", None)); replicas along `data` hold the same blocks. Inside the data-manual shard_map
the `vocab` axis is left to XLA: the row gathers and the scatter-add are partitioned from the tables'
sharding (each block gathers the rows it owns, the results are all-reduced; each block adds only its own
rows). `VOCAB_MODES` also offers "explicit", the same thing written by hand with shard_map (masked gathers,
psum over `vocab`, masked scatter); scripts/bench_scaling.py compares the two.

Batches. With one corpus group (G = 1, a single process) the global batch is built exactly as on one device,
from the same keys, then split: Nd devices give the single-device parameters up to summation order. With
G = Nd groups (the default for several processes) data shard d reads its own contiguous block of the corpus,
subsampled by itself, and builds B/Nd centers from it with the key fold_in(step key, d): a process only
touches its own part of the corpus, and nothing larger than a batch crosses devices.

Multi-host. `initialize` wraps jax.distributed.initialize; call it before anything touches a device.
`to_host` gathers (and un-pads) a sharded state for checkpoints and the exported vectors.
"""
import functools
import re
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from w2v_jax import batches, kernels, models, sampling
from w2v_jax import step as step_lib
from w2v_jax.config import TrainConfig
from w2v_jax.corpus import EncodedCorpus
from w2v_jax.errors import W2VError
from w2v_jax.models import RowGrads
from w2v_jax.types import Batch, Params, SpanBatch

DATA, VOCAB = "data", "vocab"
AXES = (DATA, VOCAB)
VOCAB_MODES = ("auto", "explicit")
DENSE_OUT = ("cbow", "sgram")   # full softmax: out_idx = arange(V), so their out_rows are psum-reduced


# ----------------------------------------------------------------------------- mesh and start-up

def parse_mesh(spec: str) -> dict[str, int]:
  """"data:2,vocab:2" -> {"data": 2, "vocab": 2}; raises W2VError naming what is wrong."""
  shape = {}
  for part in spec.split(","):
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*:\s*(\S*)\s*", part)
    if m is None:
      raise W2VError(f"--mesh={spec!r}: {part.strip()!r} is not axis:size (e.g. --mesh=data:2,vocab:2)")
    axis, size = m.groups()
    if axis not in AXES:
      raise W2VError(f"--mesh={spec!r}: unknown axis {axis!r}; the axes are {' and '.join(AXES)}")
    if axis in shape:
      raise W2VError(f"--mesh={spec!r}: axis {axis!r} is given twice")
    if not re.fullmatch(r"\d+", size) or int(size) < 1:
      raise W2VError(f"--mesh={spec!r}: the size of {axis!r} must be a positive integer, got {size!r}")
    shape[axis] = int(size)
  return shape


def make_mesh(spec: str, devices=None) -> Mesh:
  """The [data, vocab] Mesh of `spec` over `devices` (default: jax.devices(), all processes')."""
  shape = parse_mesh(spec)
  devices = jax.devices() if devices is None else list(devices)
  dims = (shape.get(DATA, 1), shape.get(VOCAB, 1))
  if dims[0] * dims[1] != len(devices):
    raise W2VError(f"--mesh={spec!r} needs {dims[0] * dims[1]} devices but JAX sees {len(devices)} "
                   f"({devices[0].platform}); make the sizes multiply to {len(devices)}")
  return jax.make_mesh(dims, AXES, (jax.sharding.AxisType.Auto,) * 2, devices=devices)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """jax.distributed.initialize for a multi-host run; "auto" detects the cluster (TPU pod, SLURM, MPI).

  Does nothing when no argument is given. Must run before anything touches a device.
  """
  if coordinator_address is None and num_processes is None and process_id is None:
    return
  if coordinator_address == "auto":
    jax.distributed.initialize()
    return
  if coordinator_address is None or num_processes is None or process_id is None:
    raise W2VError("a multi-host run needs all of --coordinator_address, --num_processes and --process_id "
                   "(or --coordinator_address=auto on a TPU pod or a SLURM/MPI cluster)")
  if not 0 <= process_id < num_processes:
    raise W2VError(f"--process_id must be in 0..{num_processes - 1}, got {process_id}")
  jax.distributed.initialize(coordinator_address, num_processes, process_id)


# ----------------------------------------------------------------------------- placement and gathering

def padded_vocab(vocab_size: int, mesh: Mesh) -> int:
  """V rounded up to a multiple of the `vocab` axis, so the tables split into equal blocks."""
  nv = mesh.shape[VOCAB]
  return -(-vocab_size // nv) * nv


def _spec(x, vocab_rows: int) -> P:
  """Tables (and optimizer slots shaped like them) are split by rows across `vocab`; the rest replicated."""
  return P(VOCAB, None) if np.ndim(x) == 2 and np.shape(x)[0] == vocab_rows else P()


def state_shardings(state, mesh: Mesh, vocab_rows: int):
  return jax.tree.map(lambda x: NamedSharding(mesh, _spec(x, vocab_rows)), state)


def place_state(state, mesh: Mesh, vocab_size: int):
  """A host or single-device state, its tables padded to V' rows, placed on the mesh."""
  rows = padded_vocab(vocab_size, mesh)

  def pad(x):
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[0] == vocab_size:
      x = np.concatenate([x, np.zeros((rows - vocab_size, x.shape[1]), x.dtype)])
    return x
  padded = jax.tree.map(pad, state)
  return jax.device_put(padded, state_shardings(padded, mesh, rows))


def _index_key(index) -> tuple:
  return tuple((s.start, s.stop, s.step) for s in index)


def _host(x: jax.Array) -> np.ndarray:
  """x as one numpy array: from this process's shards when they cover it, else by a cross-process gather
  (a collective: then every process must call this)."""
  if x.is_fully_addressable:
    return np.asarray(x)
  local = {_index_key(s.index): s for s in x.addressable_shards}
  if {_index_key(i) for i in x.sharding.devices_indices_map(x.shape).values()} <= local.keys():
    out = np.empty(x.shape, x.dtype)
    for s in local.values():
      out[s.index] = np.asarray(s.data)
    return out
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def to_host(state, vocab_size: int, mesh: Mesh):
  """The state as host numpy arrays with the padding rows dropped: what checkpoints and vectors need."""
  rows = padded_vocab(vocab_size, mesh)
  return jax.tree.map(lambda x: _host(x)[:vocab_size] if x.ndim == 2 and x.shape[0] == rows else _host(x),
                      state)


# ----------------------------------------------------------------------------- epoch data

def default_groups(mesh: Mesh) -> int:
  """Corpus groups: 1 (every device sees the whole corpus) in one process; one per data shard in several."""
  return 1 if jax.process_count() == 1 else mesh.shape[DATA]


def _block(corpus: EncodedCorpus, lo: int, hi: int) -> EncodedCorpus:
  """Tokens lo..hi-1 of the corpus; a sentence crossing a block edge is cut there."""
  offsets = np.unique(np.clip(np.asarray(corpus.offsets), lo, hi)) - lo
  return EncodedCorpus(np.asarray(corpus.tokens[lo:hi]), offsets, corpus.stats)


def epoch_data(cfg: TrainConfig, vocab, corpus: EncodedCorpus, epoch: int, mesh: Mesh,
               groups: int | None = None) -> step_lib.EpochData:
  """The epoch's data on the mesh: tokens and sent are [G, N/G], row g the subsampled corpus block g.

  With G = 1 this is train.epoch_data's array, replicated. With G = Nd, row g lives on data shard g and is
  computed only by the process holding it (seed stream (seed, epoch * G + g)); steps is the largest block's.
  """
  groups = default_groups(mesh) if groups is None else groups
  if groups not in (1, mesh.shape[DATA]):
    raise W2VError(f"corpus groups must be 1 or the data axis size {mesh.shape[DATA]}, got {groups}")
  keep = sampling.keep_probs(vocab.counts, cfg.sample)
  total = len(corpus.tokens)
  n = -(-total // groups)
  sharding = NamedSharding(mesh, P(DATA if groups > 1 else None, None))

  @functools.cache
  def block(g):
    sub = _block(corpus, min(g * n, total), min((g + 1) * n, total))
    tok, sent = sampling.subsample(sub, keep, cfg.seed, epoch if groups == 1 else epoch * groups + g)
    tokens, sents = np.zeros(n, np.int32), np.full(n, -1, np.int32)
    tokens[:len(tok)], sents[:len(sent)] = tok, sent
    return tokens, sents, len(tok)

  local = sorted({range(groups)[i[0]][0] for i in sharding.addressable_devices_indices_map((groups, n)).values()})
  kept = max(block(g)[2] for g in local)
  if jax.process_count() > 1:
    kept = int(np.max(multihost_utils.process_allgather(np.int32(kept))))
  if kept == 0:
    raise W2VError(f"--sample={cfg.sample} kept no words in epoch {epoch}: raise --sample or use 0")

  def rows(field):
    return jax.make_array_from_callback((groups, n), sharding, lambda i: np.stack(
        [block(g)[field] for g in range(groups)[i[0]]]))
  replicated = NamedSharding(mesh, P())
  rest = jax.device_put((sampling.noise_alias(vocab.counts, cfg.ns_exponent),
                         np.asarray(batches.epoch_key(cfg.seed, epoch)),
                         np.int32(batches.num_batches(kept, cfg.batch_size // groups)), np.int32(epoch)),
                        replicated)
  return step_lib.EpochData(rows(0), rows(1), *rest)


# ----------------------------------------------------------------------------- the sharded step and chunk

def fast_row_grads(cfg: TrainConfig, span: bool) -> Callable:
  """The row-gradient function step.make_fast_step applies for cfg (tests check the two agree)."""
  if span:
    return (kernels.sgram_neg_swapped_span_row_grads if cfg.model == "sgram_neg" else
            functools.partial(kernels.cbow_neg_span_row_grads, cbow_context_grad=cfg.cbow_context_grad))
  fn = models.get(cfg.model).row_grads
  if cfg.model.startswith("cbow"):
    fn = functools.partial(fn, cbow_context_grad=cfg.cbow_context_grad)
  if cfg.model == "sgram_neg" and cfg.sgram_neg_form == "swapped":
    fn = kernels.sgram_neg_swapped_row_grads
  return fn


def _split(batch, parts: int):
  """A [B] batch -> [parts, B/parts] batches; a SpanBatch's part keeps the W positions either side."""
  if isinstance(batch, SpanBatch):
    B, C = batch.mask.shape
    b = B // parts
    idx = (jnp.arange(parts) * b)[:, None] + jnp.arange(b + C)[None, :]              # [parts, b+2W]
    return SpanBatch(batch.tokens[idx], batch.mask.reshape(parts, b, C),
                     batch.negatives.reshape(parts, b, -1))
  return jax.tree.map(lambda x: x.reshape(parts, x.shape[0] // parts, *x.shape[1:]), batch)


def _metrics(loss, mask) -> step_lib.Metrics:
  n = jnp.sum(mask, axis=1)
  return step_lib.Metrics(*(jnp.sum(x).astype(jnp.float32) for x in (loss, n > 0, n)))


def _explicit_row_grads(row_grads, params: Params, batch):
  """Row gradients from row blocks of the tables: every block gathers the batch's rows it owns (zeros
  elsewhere), a psum over `vocab` assembles one row per id occurrence, and `row_grads` runs on those."""
  leaves, tree = jax.tree.flatten(batch)
  is_id = [jnp.issubdtype(x.dtype, jnp.integer) for x in leaves]
  ids = jnp.concatenate([x.reshape(-1) for x, i in zip(leaves, is_id) if i])                # [M]
  rows = params.W_in.shape[0]
  local = ids - jax.lax.axis_index(VOCAB) * rows
  own = (local >= 0) & (local < rows)
  local = jnp.where(own, local, 0)
  mini = Params(*(jax.lax.psum(jnp.where(own[:, None], t[local], 0), VOCAB) for t in params))   # [M, D]
  start, positions = 0, []
  for x, i in zip(leaves, is_id):
    positions.append(jnp.arange(start, start + x.size, dtype=jnp.int32).reshape(x.shape) if i else x)
    start += x.size if i else 0
  loss, rg = row_grads(mini, jax.tree.unflatten(tree, positions))
  return loss, RowGrads(ids[rg.in_idx], rg.in_rows, ids[rg.out_idx], rg.out_rows)


def _add_owned(table, idx, rows):
  """table += the rows whose global index falls in this `vocab` block (the others are dropped)."""
  n = table.shape[0]
  local = idx - jax.lax.axis_index(VOCAB) * n
  return table.at[jnp.where((local >= 0) & (local < n), local, n)].add(rows.astype(table.dtype), mode="drop")


def _fast_step(cfg: TrainConfig, mesh: Mesh, span: bool, vocab_mode: str) -> Callable:
  """The fast step on [Nd, B/Nd] per-shard batches: local row gradients, all-gathered, all applied."""
  row_grads = fast_row_grads(cfg, span)
  explicit = vocab_mode == "explicit" and mesh.shape[VOCAB] > 1
  one = mesh.shape[DATA] == 1   # collectives over a size-1 axis are identities (and trip XLA: vocab:4)
  gather = (lambda x: x) if one else functools.partial(jax.lax.all_gather, axis_name=DATA, tiled=True,
                                                       to="invarying")
  psum = (lambda x: x) if one else functools.partial(jax.lax.psum, axis_name=DATA)

  def local_step(state, batch, lr):
    batch = jax.tree.map(lambda x: x[0], batch)
    if explicit:
      loss, rg = _explicit_row_grads(row_grads, state.params, batch)
    else:
      loss, rg = row_grads(state.params, batch)
    if cfg.model in DENSE_OUT:
      out = rg.out_idx, psum(rg.out_rows)
    else:
      out = gather(rg.out_idx), gather(rg.out_rows)
    rg = RowGrads(gather(rg.in_idx), gather(rg.in_rows), *out)
    if explicit:
      params = Params(_add_owned(state.params.W_in, rg.in_idx, -lr * rg.in_rows),
                      _add_owned(state.params.W_out, rg.out_idx, -lr * rg.out_rows))
    else:
      params = models.apply_rows(state.params, rg, -lr)
    return state._replace(params=params), psum(_metrics(loss, batch.mask))

  # Manual axes only where collectives are written by hand; a size-1 axis is left to XLA (its typing, and
  # XLA's partitioner, trip over collectives on a manual size-1 axis beside an automatic `vocab`).
  manual = ({DATA} if not one else set()) | ({VOCAB} if explicit else set())
  if not manual:
    return local_step
  table = P(VOCAB, None) if explicit else P()
  spec = step_lib.TrainState(Params(table, table), ())
  return jax.shard_map(local_step, mesh=mesh, in_specs=(spec, P(DATA) if not one else P(), P()),
                       out_specs=(spec, P()), axis_names=manual)


def _annotated_step(step: Callable, mesh: Mesh, shardings) -> Callable:
  """Any step on the [B] batch, partitioned by XLA from annotations: the batch split across `data`."""
  def sharded(state, batch, lr):
    batch = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), batch)
    state, metrics = step(state, jax.lax.with_sharding_constraint(batch, NamedSharding(mesh, P(DATA))), lr)
    return jax.lax.with_sharding_constraint(state, shardings), metrics
  return sharded


def shard_chunk(cfg: TrainConfig, mesh: Mesh, state, step: Callable, vocab_mode: str = "auto") -> Callable:
  """The jitted, donated chunk(state, data, first_step) of step.make_train_chunk, run on the mesh.

  `state` is the placed state (place_state); `step` is train.make_step(cfg)'s, used as is on the research
  path. The fast path's step is rebuilt here (`_fast_step`) so that its rows can be all-gathered.
  """
  nd, rows = mesh.shape[DATA], state.params.W_in.shape[0]
  if cfg.batch_size % nd:
    raise W2VError(f"--batch_size={cfg.batch_size} must be a multiple of the mesh's data size {nd}")
  if vocab_mode not in VOCAB_MODES:
    raise W2VError(f"vocab_mode must be one of {', '.join(VOCAB_MODES)}, got {vocab_mode!r}")
  if cfg.model in DENSE_OUT and mesh.shape[VOCAB] > 1 and cfg.optimizer == "word2vec" and vocab_mode == "explicit":
    raise W2VError(f"vocab_mode='explicit' needs a negative-sampling model, not {cfg.model}")
  shardings = state_shardings(state, mesh, rows)
  span = bool(getattr(step, "span", False))
  if cfg.optimizer == "word2vec":
    step = _fast_step(cfg, mesh, span, vocab_mode)
  else:
    step = _annotated_step(step, mesh, shardings)
  S = cfg.steps_per_call
  pairs = cfg.model == "sgram_neg" and cfg.sgram_neg_form == "pairs"

  def chunk(state, data: step_lib.EpochData, first_step):
    groups = data.tokens.shape[0]
    keys = (data.key[None] if groups == 1 else
            jax.vmap(jax.random.fold_in, (None, 0))(data.key, jnp.arange(groups)))
    stacked = jax.vmap(lambda tok, sent, key: batches.make_batches(
        tok, sent, key, first_step, data.noise, num_steps=S, batch_size=cfg.batch_size // groups,
        window=cfg.window, neg=cfg.neg * 2 * cfg.window if pairs else cfg.neg,
        reduced_window=cfg.reduced_window, span=span))(data.tokens, data.sent, keys)   # [G, S, B/G, ..]
    split = jax.vmap(jax.vmap(functools.partial(_split, parts=nd // groups)))(stacked)  # [G, S, Nd/G, ..]
    stacked = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape(S, nd, *x.shape[3:]), split)
    stacked = jax.lax.with_sharding_constraint(stacked, NamedSharding(mesh, P(None, DATA)))
    if pairs:
      stacked = jax.vmap(jax.vmap(step_lib.per_pair, (0, None)), (0, None))(stacked, cfg.neg)

    def body(state, xs):
      i, batch = xs
      progress = (data.epoch + (first_step + i) / data.steps) / cfg.epochs
      return step(state, batch, step_lib.linear_lr(cfg.learning_rate, cfg.min_lr_ratio, progress))

    state, ms = jax.lax.scan(body, state, (jnp.arange(S), stacked))
    return state, jax.tree.map(jnp.sum, ms)

  return jax.jit(chunk, out_shardings=(shardings, NamedSharding(mesh, P())), donate_argnums=0)
