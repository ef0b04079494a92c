"""`TrainConfig`: every setting of a training run, with word2vec's defaults, validated in one place."""
import dataclasses
import json
import math

from w2v_jax import models, ngrams
from w2v_jax.errors import W2VError

LAYOUTS = ("auto", "span", "buckets", "batch")
# Each option's allowed values, in one place: TrainConfig.validate checks them and the scripts' flags
# (experiments/common.py) offer them.
CHOICES = {"cbow_context_grad": ("sum", "mean"), "sgram_neg_form": ("swapped", "shared", "pairs"),
           "optimizer": ("word2vec", "sgd", "adam", "adagrad", "rmsprop"), "eval_with": ("in", "in+out"),
           "analogy_method": ("3cosadd", "3cosmul"), "layout": LAYOUTS, "subsampling": ("dirty", "clean"),
           "optimizer_on": ("rows", "tables"), "softmax_prior": ("unigram", "none")}
INT_MAX = 2**31 - 1   # sizes and the seed reach jitted code as int32
MAX_WINDOW = 1000     # word2vec.c's MAX_SENTENCE_LENGTH: no window of its reaches further


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """A run's settings. Two runs with equal configs (and corpus) give identical vectors on the CPU (not so
  with hogwild=True, whose threads race: engine.select_step says so in the run's first line)."""
  model: str = "sgram_neg"
  dim: int = 100
  window: int = 5
  neg: int = 5
  epochs: int = 5
  min_count: int = 5
  max_vocab_size: int | None = None
  sample: float = 1e-3
  subsampling: str = "dirty"         # "dirty": drop words before windowing (word2vec.c); "clean": keep holes
  lr: float | None = None            # None: the model's default_lr (word2vec.c's: 0.025 skip-gram, 0.05 CBOW)
  min_lr_ratio: float = 1e-4         # lr decays linearly to lr * min_lr_ratio, as word2vec.c
  batch_size: int = 1024
  seed: int = 0
  ns_exponent: float = 0.75
  reduced_window: bool = True
  cbow_context_grad: str = "sum"     # "sum": word2vec.c/gensim rule; "mean": the exact gradient
  softmax_prior: str = "unigram"     # cbow, sgram: a fixed log-unigram output bias (losses.log_unigram_prior),
                                     # or "none" (docs 000/001 as written)
  sgram_neg_form: str = "swapped"    # sgram_neg's training form: "swapped" | "shared" | "pairs" (models.py)
  max_dup: float | str | None = "auto"   # cap on a word's summed updates per step (rows.damp_duplicates):
                                     # a number, None (off), or "auto" (dup_cap: 32 up to K = 5, less above)
  hogwild: bool = False              # fused kernels: word2vec.c's unsynchronised updates (not bit-reproducible)
  layout: str = "auto"               # a step's batch: "span", "buckets", "batch"; auto: engine.select_step
  steps_per_call: int = 32           # training steps per jitted call (docs/performance.md: 16 was slower)
  optimizer: str = "word2vec"        # "word2vec": word2vec's sparse SGD; or sgd, adam, adagrad, rmsprop on
  optimizer_on: str = "rows"         # the touched rows (row_optimizers.py) or the whole tables (optax)
  eval_with: str = "in"              # vectors to evaluate/export: "in" (W_in) or "in+out" (W_in + W_out)
  analogy_method: str = "3cosadd"    # or "3cosmul"
  min_n: int = ngrams.MIN_N          # the subword models (subword.py): n-grams of "<word>", n = min_n..max_n,
  max_n: int = ngrams.MAX_N          # hashed into `buckets` extra rows of W_in (fastText's and gensim's
  buckets: int = ngrams.BUCKETS      # defaults: 3, 6, 2,000,000)

  @property
  def learning_rate(self) -> float:
    return models.get(self.model).default_lr if self.lr is None else self.lr

  @property
  def dup_cap(self) -> float | None:
    """The duplicate cap the steps use (rows.damp_duplicates): max_dup as given, or for "auto"

      cap = 32 · min(1, 6 / (K + 1)).

    Each row update sums the gradients of a window's K + 1 predictions, so the auto cap holds a word's
    summed update in one step to 192 predictions' worth: 32 updates at K = 5, the cap measured with
    K = 5. At 32 whatever K, sgram_neg with K = 15 at lr 0.025 blew up (docs/training.md, "Training,
    as word2vec does it"); tests/test_train.py trains it with the auto cap. Models without negatives get 32."""
    if self.max_dup != "auto":
      return self.max_dup
    k = self.neg if models.get(self.model).uses_negatives else 5
    return 32.0 * min(1.0, 6.0 / (k + 1))

  def __post_init__(self):
    self.validate()   # checked once, where it is made (dataclasses.replace makes a new one: checked too)

  def validate(self) -> "TrainConfig":
    """Raises W2VError naming the setting to change; returns self. Called when a TrainConfig is made."""
    models.get(self.model)   # raises W2VError naming the registered models
    positive = {"dim": self.dim, "window": self.window, "epochs": self.epochs,
                "batch_size": self.batch_size, "steps_per_call": self.steps_per_call,
                "min_count": self.min_count}
    for name, value in positive.items():
      if value < 1:
        raise W2VError(f"--{name} must be at least 1, got {value}")
      if value > INT_MAX:   # they reach jitted code as int32
        raise W2VError(f"--{name}={value} is too large: at most {INT_MAX:,}")
    if self.window > MAX_WINDOW:
      raise W2VError(f"--window={self.window} is too large: at most {MAX_WINDOW} (word2vec.c's longest sentence; "
                     f"a step holds batch_size x 2 x window context slots, and its compilation grows with them)")
    if self.neg < 0:
      raise W2VError(f"--neg must be >= 0, got {self.neg}")
    if models.get(self.model).uses_negatives and self.neg < 1:
      raise W2VError(f"--model={self.model} draws negatives: it needs --neg >= 1 (got {self.neg})")
    if self.sample < 0:
      raise W2VError(f"--sample must be >= 0 (0 switches subsampling off), got {self.sample}")
    if not 0 < self.learning_rate < math.inf:
      raise W2VError(f"--lr must be a finite number > 0, got {self.learning_rate}")
    for name in ("sample", "ns_exponent"):
      if not math.isfinite(getattr(self, name)):
        raise W2VError(f"--{name} must be a finite number, got {getattr(self, name)}")
    if not 0 < self.min_lr_ratio <= 1:
      raise W2VError(f"min_lr_ratio must be in (0, 1], got {self.min_lr_ratio}")
    if not 0 <= self.seed <= INT_MAX:
      raise W2VError(f"--seed must be between 0 and {INT_MAX}, got {self.seed}")
    if self.max_dup != "auto" and self.max_dup is not None and not (
        isinstance(self.max_dup, (int, float)) and self.max_dup > 0):
      raise W2VError(f"--max_dup must be a number > 0, 'auto', or 0 on the command line to switch the cap "
                     f"off; got {self.max_dup!r}")
    ngrams.check_settings(self.min_n, self.max_n, self.buckets)
    if self.max_vocab_size is not None and self.max_vocab_size < 1:
      raise W2VError(f"--max_vocab_size must be at least 1, got {self.max_vocab_size}")
    for name, allowed in CHOICES.items():
      if getattr(self, name) not in allowed:
        raise W2VError(f"--{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
    return self

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_dict(cls, d: dict) -> "TrainConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in known})
