"""Builds the native CPU kernels ahead of time, so that no run spends its first seconds compiling them.

    python -m w2v_jax.native build [--force]

--force forgets a remembered failed build and tries again. Prints where the library is, or why the
kernels are off (with the compiler's log), and exits 1 when they are off.
"""
import sys

from w2v_jax import native
from w2v_jax.errors import W2VError


def main(argv: list[str]) -> int:
  args = argv[1:]
  if not args or args[0] != "build" or set(args[1:]) - {"--force"}:
    print("usage: python -m w2v_jax.native build [--force]", file=sys.stderr)
    return 2
  try:
    status = native.build(force="--force" in args)
  except W2VError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(status.reason)
  return 0 if status.available else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv))
