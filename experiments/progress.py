"""Progress reporting: a bar redrawn in place on a terminal, plain log lines otherwise."""
import sys
import time


def _duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
  """Callable on_log hook for `api.train`."""

  def __init__(self, stream=sys.stderr, every_s: float = 3.0):
    self.stream = stream
    self.tty = stream.isatty()
    self.every_s = 0.2 if self.tty else every_s   # metrics.jsonl gets every record; the screen fewer
    self.last = -float("inf")

  def __call__(self, r: dict) -> None:
    if not r.get("final") and time.monotonic() - self.last < self.every_s:
      return
    self.last = time.monotonic()
    text = (f"epoch {r['epoch']} | {100 * r['progress']:5.1f}% | loss/prediction {r['loss']:.4f} | "
            f"lr {r['lr']:.5f} | {r['words_per_sec'] / 1e3:,.0f}k words/s | ETA {_duration(r['eta_s'])}")
    if self.tty:
      width = 24
      filled = int(width * r["progress"])
      self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}")
      if r.get("final"):
        self.stream.write("\n")
    else:
      self.stream.write(time.strftime("%H:%M:%S ") + text + "\n")
    self.stream.flush()
