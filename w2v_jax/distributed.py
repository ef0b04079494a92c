"""Training over many devices and hosts: a `data` x `vocab` jax.sharding.Mesh and the sharded chunk.

Data parallel (fast path). Each step's global batch, built exactly as on one device in the layout the
engine picked (engine.select_step), is split into Nd shards. Shard d computes its rows with the step's
`rows` (the model's JAX rows), `all_gather` over `data` concatenates them, and every replica applies all
of them with the step's `update`:  W <- W - lr * damp(sum_d scatter(idx_d, rows_d)), the single-device
update with the rows summed in another order. Replicas stay identical, and a step moves Nd * M * (D + 1)
numbers (M rows per shard), never a dense [V, D] gradient; only the full-softmax models' dense output
rows (M_out = V) are psum-reduced. A SpanBatch is split into Nd sub-spans of B/Nd centers (each with its
W positions either side); each shard's per-position W_in rows are put back at their positions of the
whole span and psum-reduced, so every position is applied once, as on one device (the duplicate cap
then counts the same rows). The research path (jax.grad + optax) is dense anyway: it is partitioned from
sharding annotations alone, and XLA all-reduces its gradients.

Vocab parallel. W_in and W_out, padded to V' rows (a multiple of Nv), are split by rows across `vocab`;
XLA partitions the gathers and scatter-adds from that sharding (only `data` is manual in the shard_map):
each block gathers the rows it owns, one all-reduce assembles them, each block adds its own rows. A
hand-written shard_map of that scheme measured slower on 4 forced CPU devices.

Batches. With one corpus block (the default in one process) the global batch is built as on one device,
from the same keys, then split: Nd devices give the single-device parameters up to summation order. With
one block per data shard (the default with several processes) shard d reads only its contiguous block of
the corpus, subsampled on its own, and builds B/Nd centers from it with the key fold_in(step key, d).
"""
import functools
import re
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from w2v_jax import batches, sampling
from w2v_jax import step as step_lib
from w2v_jax.config import TrainConfig
from w2v_jax.errors import W2VError
from w2v_jax.types import Batch, RowGrads, SpanBatch

DATA, VOCAB = "data", "vocab"
AXES = (DATA, VOCAB)


# ----------------------------------------------------------------------------- mesh and start-up

def parse_mesh(spec: str) -> dict[str, int]:
  """"data:2,vocab:2" -> {"data": 2, "vocab": 2}; raises W2VError naming what is wrong."""
  shape = {}
  for part in spec.split(","):
    m = re.fullmatch(r"\s*(\w+)\s*:\s*(\S*)\s*", part)
    if m is None:
      raise W2VError(f"--mesh={spec}: {part.strip()!r} is not axis:size (e.g. --mesh=data:2,vocab:2)")
    axis, size = m.groups()
    if axis not in AXES:
      raise W2VError(f"--mesh={spec}: unknown axis {axis!r}; the axes are {' and '.join(AXES)}")
    if axis in shape:
      raise W2VError(f"--mesh={spec}: axis {axis!r} is given twice")
    if not size.isdigit() or int(size) < 1:
      raise W2VError(f"--mesh={spec}: the size of {axis!r} must be a positive integer, got {size!r}")
    shape[axis] = int(size)
  return shape


def make_mesh(spec: str, devices=None) -> Mesh:
  """The [Nd, Nv] Mesh of `spec` over `devices` (default: all processes' jax.devices()); absent axes are 1."""
  shape = parse_mesh(spec)
  devices = jax.devices() if devices is None else list(devices)
  dims = (shape.get(DATA, 1), shape.get(VOCAB, 1))
  if dims[0] * dims[1] != len(devices):
    raise W2VError(f"--mesh={spec} needs {dims[0] * dims[1]} devices but JAX sees {len(devices)} "
                   f"({devices[0].platform}); give sizes whose product is {len(devices)}")
  return jax.make_mesh(dims, AXES, (jax.sharding.AxisType.Auto,) * 2, devices=devices)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """jax.distributed.initialize, before anything touches a device (a no-op without arguments); "auto" lets
  JAX find the cluster (Cloud TPU, SLURM, Open MPI)."""
  if coordinator_address is None and num_processes is None and process_id is None:
    return
  if coordinator_address == "auto":
    return jax.distributed.initialize()
  if coordinator_address is None or num_processes is None or process_id is None:
    raise W2VError("a multi-host run needs --coordinator_address, --num_processes and --process_id "
                   "(or --coordinator_address=auto on a TPU pod slice or a SLURM/MPI cluster)")
  if not 0 <= process_id < num_processes:
    raise W2VError(f"--process_id must be in 0..{num_processes - 1}, got {process_id}")
  jax.distributed.initialize(coordinator_address, num_processes, process_id)


# ----------------------------------------------------------------------------- placement and gathering

def padded_vocab(vocab_size: int, mesh: Mesh) -> int:
  """V rounded up to a multiple of the `vocab` axis, so the tables split into equal blocks."""
  return -(-vocab_size // mesh.shape[VOCAB]) * mesh.shape[VOCAB]


def state_shardings(state, mesh: Mesh):
  """Tables (and optimizer slots shaped like them) split by rows across `vocab`; the rest replicated."""
  rows = state.params.W_in.shape[0]
  table = lambda x: np.ndim(x) == 2 and np.shape(x)[0] == rows
  return jax.tree.map(lambda x: NamedSharding(mesh, P(VOCAB, None) if table(x) else P()), state)


def place_state(state, mesh: Mesh, vocab_size: int):
  """A host or single-device state, its tables padded with zero rows to V', placed on the mesh."""
  rows = padded_vocab(vocab_size, mesh)

  def pad(x):
    x = np.asarray(x)
    if x.ndim >= 1 and x.shape[0] == vocab_size:   # tables, and row optimisers' per-row state
      return np.pad(x, ((0, rows - vocab_size),) + ((0, 0),) * (x.ndim - 1))
    return x
  padded = jax.tree.map(pad, state)
  return jax.device_put(padded, state_shardings(padded, mesh))


def agree_flag(flag: bool) -> bool:
  """Process 0's flag on every process (e.g. whether it refused the workdir: the others must stop too, or
  they would wait for it in the first collective)."""
  if jax.process_count() == 1:
    return flag
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag, np.int32)))


def agree(state, position):
  """Process 0's start (fresh or resumed) on every process, so that no shared disk is needed to resume."""
  if jax.process_count() == 1:
    return state, position
  leaves, pos = multihost_utils.broadcast_one_to_all(
      ([np.asarray(x) for x in jax.tree.leaves(state)], np.asarray(position, np.int64)))
  return jax.tree.unflatten(jax.tree.structure(state), leaves), type(position)(*map(int, pos))


def _host(x: jax.Array) -> np.ndarray:
  """x as one numpy array: from this process's shards when they cover it, else by a cross-process
  all-gather (a collective: every process must then call it)."""
  key = lambda index: tuple((s.start, s.stop) for s in index)
  local = {key(s.index): s for s in x.addressable_shards}
  if not {key(i) for i in x.sharding.devices_indices_map(x.shape).values()} <= local.keys():
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  out = np.empty(x.shape, x.dtype)
  for s in local.values():
    out[s.index] = np.asarray(s.data)
  return out


def to_host(state, vocab_size: int, mesh: Mesh):
  """The placed state as un-padded host arrays, for checkpoints and vectors; no communication when each
  process holds a whole replica (the `vocab` axis within a process: make_mesh's layout for Nv <= local)."""
  rows = padded_vocab(vocab_size, mesh)
  return jax.tree.map(lambda x: _host(x)[:vocab_size] if x.ndim >= 1 and x.shape[0] == rows else _host(x),
                      state)


# ----------------------------------------------------------------------------- epoch data

def default_blocks(mesh: Mesh) -> int:
  """Corpus blocks: 1 (every device sees the whole corpus) in one process, one per data shard in several."""
  return 1 if jax.process_count() == 1 else mesh.shape[DATA]


class _Block(NamedTuple):
  tokens: np.ndarray
  offsets: np.ndarray

  @property
  def num_sentences(self) -> int:
    return len(self.offsets) - 1


def _block(corpus, lo: int, hi: int) -> _Block:
  """Tokens lo..hi-1 of a corpus.EncodedCorpus; a sentence that crosses a block edge is cut there."""
  offsets = np.unique(np.clip(np.asarray(corpus.offsets), lo, hi)) - lo
  return _Block(np.asarray(corpus.tokens[lo:hi]), offsets)


def epoch_data(cfg: TrainConfig, vocab, corpus, epoch: int, mesh: Mesh,
               noise: sampling.AliasTable | None = None) -> batches.EpochData:
  """The epoch's data on the mesh: tokens and sent [G, N/G], row g the subsampled corpus block g.

  G = 1 gives loop.epoch_data's arrays, replicated. G = Nd puts row g on data shard g, computed only by
  the process holding it (subsampled with the stream (seed, epoch * G + g)); `steps` is the longest row's.
  `noise`: as loop.epoch_data's.
  """
  blocks = default_blocks(mesh)
  keep = sampling.keep_probs(vocab.counts, cfg.sample)
  total = len(corpus.tokens)
  n = -(-total // blocks)
  sharding = NamedSharding(mesh, P(DATA if blocks > 1 else None, None))

  @functools.cache
  def block(g):
    tok, sent = sampling.subsample(_block(corpus, min(g * n, total), min(g * n + n, total)), keep,
                                   cfg.seed, epoch if blocks == 1 else epoch * blocks + g, cfg.subsampling)
    tokens, sents = np.zeros(n, np.int32), np.full(n, -1, np.int32)
    tokens[:len(tok)], sents[:len(sent)] = tok, sent
    return tokens, sents, len(tok)

  index = sharding.addressable_devices_indices_map((blocks, n)).values()
  kept = max(block(g)[2] for g in {range(blocks)[i[0]][0] for i in index})
  if jax.process_count() > 1:
    kept = int(np.max(multihost_utils.process_allgather(np.int32(kept))))
  if kept == 0:
    raise W2VError(f"--sample={cfg.sample} kept no words in epoch {epoch}: raise --sample or use 0")

  def rows(field):
    return jax.make_array_from_callback((blocks, n), sharding,
                                        lambda i: np.stack([block(g)[field] for g in range(blocks)[i[0]]]))
  if noise is None:
    noise = sampling.noise_alias(vocab.counts, cfg.ns_exponent)
  rest = (noise, np.asarray(batches.epoch_key(cfg.seed, epoch)),
          np.int32(batches.num_batches(kept, cfg.batch_size // blocks)), np.int32(epoch))
  return batches.EpochData(rows(0), rows(1), *jax.device_put(rest, NamedSharding(mesh, P())))


# ----------------------------------------------------------------------------- the sharded step and chunk

def _split(batch, parts: int, fill_id: int):
  """[B] -> [parts, ceil(B/parts)] for each `Batch` of a step (one, or buckets.py's tuple). Filling examples
  have mask 0 (zero loss, zero rows) and the id `fill_id`, one past the tables: the scatter drops their
  rows, and rows.damp_duplicates counts them for no word."""
  def split(b: Batch) -> Batch:
    pad = -b.center.shape[0] % parts
    return jax.tree.map(lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1), constant_values=(
        fill_id if jnp.issubdtype(x.dtype, jnp.integer) else 0)).reshape(parts, (x.shape[0] + pad) // parts, *x.shape[1:]), b)
  return jax.tree.map(split, batch, is_leaf=lambda x: isinstance(x, Batch))


def _split_span(span: SpanBatch, parts: int, window: int) -> SpanBatch:
  """[B+2W] span -> [parts] sub-spans of B/parts centers, each with its W positions either side."""
  B = span.mask.shape[0]
  b = B // parts
  tokens = jnp.stack([span.tokens[p * b:p * b + b + 2 * window] for p in range(parts)])
  return SpanBatch(tokens, span.mask.reshape(parts, b, *span.mask.shape[1:]),
                   span.negatives.reshape(parts, b, *span.negatives.shape[1:]))


def _fast_step(spec, mesh: Mesh, span_blocks: int | None = None, window: int = 0) -> Callable:
  """The fast step on per-shard batches: spec.rows locally, all-gathered (a span's position rows:
  psum-reduced at their positions), spec.update on all of them on every replica."""
  nd = mesh.shape[DATA]
  one = nd == 1
  # "invarying": the gathered rows are the same on every replica, so the tables stay replicated.
  gather = (lambda x: x) if one else functools.partial(jax.lax.all_gather, axis_name=DATA, tiled=True,
                                                       to="invarying")
  psum = (lambda x: x) if one else functools.partial(jax.lax.psum, axis_name=DATA)

  def local_step(state, batch, lr):
    if span_blocks is None:
      local = jax.tree.map(lambda x: x[0], batch)
      rgs, metrics = spec.rows(state.params, local)
      rg = step_lib.join(rgs)
      in_side = (gather(rg.in_idx), gather(rg.in_rows))
    else:   # batch = (sub-spans [1, ...], the whole spans' tokens [G, B/G + 2W])
      local, tokens = jax.tree.map(lambda x: x[0], batch[0]), batch[1]
      rgs, metrics = spec.rows(state.params, local)
      rg = step_lib.join(rgs)
      G, L = tokens.shape
      per_block = nd // G
      d = jax.lax.axis_index(DATA) if not one else 0
      offset = (d // per_block) * L + (d % per_block) * (local.mask.shape[0])
      placed = jax.lax.dynamic_update_slice(jnp.zeros((G * L, rg.in_rows.shape[1]), rg.in_rows.dtype),
                                            rg.in_rows, (offset, 0))
      in_side = (tokens.reshape(-1), psum(placed))
    out = ((rg.out_idx, psum(rg.out_rows)) if spec.model.dense_out else
           (gather(rg.out_idx), gather(rg.out_rows)))
    rg = RowGrads(*in_side, *out)
    return spec.update(state, rg, lr), psum(metrics)

  if one:   # no collective to write: XLA partitions it all (and trips on a manual size-1 axis)
    return local_step
  batch_spec = P(DATA) if span_blocks is None else (P(DATA), P())
  return jax.shard_map(local_step, mesh=mesh, in_specs=(P(), batch_spec, P()), out_specs=(P(), P()),
                       axis_names={DATA})


def _annotated_step(step: Callable, mesh: Mesh, shardings) -> Callable:
  """Any step on the whole [B] batch, partitioned by XLA from annotations: the batch split across `data`."""
  def sharded(state, batch, lr):
    batch = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), batch)
    state, metrics = step(state, jax.lax.with_sharding_constraint(batch, NamedSharding(mesh, P(DATA))), lr)
    return jax.lax.with_sharding_constraint(state, shardings), metrics
  return sharded


def shard_chunk(spec, cfg: TrainConfig, mesh: Mesh, state, vocab_size: int) -> Callable:
  """engine.make_chunk's chunk(state, data, first_step) on the mesh: jitted once, state donated.

  `spec` is engine.select_step(cfg, mesh)'s, `state` the placed state (place_state), `data` from
  epoch_data. The research path runs spec.step as is, partitioned by XLA; the fast path runs spec.rows per
  shard and spec.update on all rows, on the same batches, in the same layout, as one device.
  """
  nd, nv = mesh.shape[DATA], mesh.shape[VOCAB]
  if cfg.batch_size % nd:
    raise W2VError(f"--batch_size={cfg.batch_size} must be a multiple of the mesh's data size {nd}")
  if spec.model.dense_out and vocab_size % nv:
    raise W2VError(f"--model={cfg.model} on a vocab axis of {nv} needs a vocabulary size divisible by it "
                   f"(padding would enter the softmax): set --max_vocab_size={vocab_size // nv * nv}")
  rows = state.params.W_in.shape[0]
  shardings = state_shardings(state, mesh)
  fast = spec.rows is not None
  span = spec.layout == "span"
  S, W = cfg.steps_per_call, cfg.window

  def chunk(state, data: batches.EpochData, first_step):
    blocks = data.tokens.shape[0]
    keys = (data.key[None] if blocks == 1 else
            jax.vmap(jax.random.fold_in, (None, 0))(data.key, jnp.arange(blocks)))
    stacked = jax.vmap(lambda tok, sent, key: batches.make_batches(
        tok, sent, key, first_step, data.noise, num_steps=S, batch_size=cfg.batch_size // blocks,
        window=W, neg=spec.neg_draws, reduced_window=cfg.reduced_window, layout=spec.layout)
    )(data.tokens, data.sent, keys)                                            # [G, S, B/G ...]
    per_block = nd // blocks
    if span:
      subs = jax.vmap(jax.vmap(functools.partial(_split_span, parts=per_block, window=W)))(stacked)
      subs = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape(S, nd, *x.shape[3:]), subs)
      tokens = jnp.swapaxes(stacked.tokens, 0, 1)                               # [S, G, B/G + 2W]
      stacked = (jax.lax.with_sharding_constraint(subs, NamedSharding(mesh, P(None, DATA))), tokens)
    else:
      split = jax.vmap(jax.vmap(functools.partial(_split, parts=per_block, fill_id=rows)))(stacked)
      stacked = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape(S, nd, *x.shape[3:]), split)
      stacked = jax.lax.with_sharding_constraint(stacked, NamedSharding(mesh, P(None, DATA)))
    step = (_fast_step(spec, mesh, blocks if span else None, W) if fast
            else _annotated_step(spec.step, mesh, shardings))
    return step_lib.scan_steps(step, state, stacked, data, first_step, lr=cfg.learning_rate,
                               min_lr_ratio=cfg.min_lr_ratio, epochs=cfg.epochs)

  return jax.jit(chunk, out_shardings=(shardings, NamedSharding(mesh, P())), donate_argnums=0)
