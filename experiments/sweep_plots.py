"""A sweep's plots: each metric against each swept setting, one line per combination of the others."""
import pathlib

import matplotlib
import numpy as np

matplotlib.use("Agg")   # a script's choice: these plots are files, never windows
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from w2v_jax import models  # noqa: E402


def _uses_negatives(model: str) -> bool:
  return models.get(model).uses_negatives


# Sweep plots: each metric against each swept setting, one line per combination of the other settings.
SWEEP_METRICS = {  # results column: (file stem, title, y label, scale)
    "analogy_accuracy": ("analogy", "Analogy accuracy", "analogy accuracy (%)", 100.0),
    "ws353_spearman": ("ws353", "WS-353 word similarity", "WS-353 Spearman ρ", 1.0),
    "simlex999_spearman": ("simlex999", "SimLex-999 word similarity", "SimLex-999 Spearman ρ", 1.0),
    "words_per_sec": ("words_per_sec", "Training speed", "thousand words / s", 1e-3),
}
AXIS_LABELS = {"window": "window W", "neg": "negatives k", "dim": "dimension d", "model": "model"}
SHORT_NAMES = {"window": "w", "neg": "k", "dim": "d"}
MARKERS = "osD^vP*Xh<>p"


def _distinct(rows: list[dict], key: str) -> list:
  return sorted({r[key] for r in rows}, key=lambda v: (isinstance(v, str), v))


def _part(key: str, value) -> str:
  if key == "model":
    return str(value)
  if key == "neg" and value == 0:
    return "softmax"   # full-softmax runs carry neg = 0: they draw no negatives
  return f"{SHORT_NAMES.get(key, key)}={value}"


def _colors(n: int) -> list:
  cmap = plt.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "viridis")
  return [cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(n)]


def _label(axis: str) -> str:
  return AXIS_LABELS.get(axis, axis)


def _lines(ax, rows, x, xs, key, colors, metric, scale, handles) -> None:
  """One line per key over a numeric x axis (log-scaled when it spans 8x or more)."""
  for i, (line, color) in enumerate(colors.items()):
    pts = sorted((r[x], r[metric] * scale) for r in rows if key(r) == line and r[metric] is not None)
    if pts:
      h, = ax.plot(*zip(*pts), marker=MARKERS[i % len(MARKERS)], color=color, ms=5,
                   label=", ".join(_part(k, v) for k, v in line) or "all runs")
      handles.setdefault(line, h)
  if min(xs) > 0 and max(xs) / min(xs) >= 8:
    ax.set_xscale("log")
    ax.minorticks_off()
  ax.set_xticks(xs, [str(v) for v in xs])


def _strip(ax, rows, x, xs, key, colors, metric, scale, handles) -> None:
  """A categorical x axis (models): every run a point, spread sideways, coloured by the first setting that
  varies; a grey bar marks each category's median (one line per combination would be unreadable)."""
  first = lambda line: line[:1]
  groups = sorted({first(line) for line in colors})
  shades = dict(zip(groups, _colors(len(groups))))
  order = {line: i for i, line in enumerate(colors)}
  for j, v in enumerate(xs):
    mine = [r for r in rows if r[x] == v and r[metric] is not None]
    for r in mine:
      line = key(r)
      h = ax.scatter(j - 0.3 + 0.6 * (order[line] + 0.5) / len(order), r[metric] * scale, s=18,
                     color=shades[first(line)], label=", ".join(_part(k, v) for k, v in first(line)))
      handles.setdefault(first(line), h)
    if mine:
      ax.hlines(np.median([r[metric] * scale for r in mine]), j - 0.35, j + 0.35, color="0.4", lw=2)
  ax.set_xticks(range(len(xs)), [str(v) for v in xs])
  ax.set_xlim(-0.5, len(xs) - 0.5)


def sweep_plot(rows: list[dict], x: str, others: list[str], metric: str, path: str | pathlib.Path) -> None:
  """One PNG: `metric` against setting `x`, a panel per model when models differ, a line per
  combination of the `others` that vary, and the ones that do not in the subtitle."""
  if x == "neg":
    rows = [r for r in rows if _uses_negatives(r["model"])]  # k means nothing for a full softmax
  _, title, ylabel, scale = SWEEP_METRICS[metric]
  models = _distinct(rows, "model")
  panels = models if x != "model" and len(models) > 1 else [None]
  varying = [k for k in others if k != "model" and len(_distinct(rows, k)) > 1]
  fixed = [k for k in others if k not in varying and not (k == "model" and panels[0] is not None)]
  key = lambda r: tuple((k, r[k]) for k in varying)
  lines = sorted({key(r) for r in rows})
  colors = dict(zip(lines, _colors(len(lines))))
  xs = _distinct(rows, x)
  numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
  fig, axes = plt.subplots(1, len(panels), figsize=(0.4 + 4.2 * len(panels), 3.8), dpi=110,
                           sharey=True, squeeze=False)
  handles = {}
  for ax, model in zip(axes[0], panels):
    mine = [r for r in rows if model is None or r["model"] == model]
    (_lines if numeric else _strip)(ax, mine, x, xs, key, colors, metric, scale, handles)
    ax.set_xlabel(_label(x))
    ax.grid(alpha=0.3)
    if model is not None:
      ax.set_title(model, fontsize=10)
  axes[0][0].set_ylabel(ylabel)
  epochs = rows[0]["epochs"]
  context = [_part(k, rows[0][k]) for k in fixed] + [f"{epochs} epoch{'s' if epochs != 1 else ''}"]
  fig.suptitle(f"{title} vs {_label(x)}\n({', '.join(context)})", fontsize=11)
  if len(handles) > 1:
    shown = varying if numeric else varying[:1]
    fig.legend(handles.values(), [h.get_label() for h in handles.values()], loc="center left",
               bbox_to_anchor=(1.0, 0.5), fontsize="small", frameon=False,
               title=", ".join(_label(k) for k in shown) + ("" if numeric else "\n(bar: median)"))
  fig.tight_layout()
  fig.savefig(path, bbox_inches="tight")
  plt.close(fig)


def sweep_plots(rows: list[dict], swept: list[str], out_dir: str | pathlib.Path) -> list[pathlib.Path]:
  """plots/<metric>_vs_<setting>.png for each swept setting with more than one value; returns the paths
  (earlier PNGs that this grid no longer draws are removed)."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = []
  for x in swept:
    usable = [r for r in rows if x != "neg" or _uses_negatives(r["model"])]
    if len(_distinct(usable, x)) < 2:
      continue
    for metric, (stem, *_) in SWEEP_METRICS.items():
      paths.append(out_dir / f"{stem}_vs_{x}.png")
      sweep_plot(usable, x, [k for k in swept if k != x], metric, paths[-1])
  for old in out_dir.glob("*_vs_*.png"):
    if old not in paths:
      old.unlink()
  return paths
