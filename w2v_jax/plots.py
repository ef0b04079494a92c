"""The loss curve of a run as a PNG, drawn with matplotlib's Agg canvas directly: importing this module
leaves matplotlib's global backend alone. matplotlib is imported at the first plot, not with the package
(it took 0.33 s of every process's start, plotting or not)."""
import pathlib


def loss_curve(history: list[dict], path: str | pathlib.Path, epochs: int, title: str = "") -> None:
  """Interval loss per prediction (the mean over each log interval, not cumulative) against epochs."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(6.4, 4.0), dpi=100)
  FigureCanvasAgg(fig)
  ax = fig.add_subplot()
  ax.plot([r["progress"] * epochs for r in history], [r["loss"] for r in history],
          marker="." if len(history) < 50 else None)
  ax.set_xlabel("epochs")
  ax.set_ylabel("loss per prediction (interval mean)")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path)
