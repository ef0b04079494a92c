"""The native CPU backend: XLA FFI kernels for what XLA:CPU does slowly, built from this folder's C++.

Fused steps. `cbow_neg_span_step(params, span, lr, max_dup, ...)` and `sgram_neg_span_step(...)` run a whole
training step on a SpanBatch as one custom call (fused_steps.cc): the forward pass, the closed-form
gradient and both tables' updates, in place on the donated tables, on the calling thread and the other
threads of XLA's CPU pool. Each equals its pure-JAX step (`*_span_step_reference`: the rewrites.py maths,
then rows.py's update) to float rounding, not bit for bit, since its dot products add in an order of its
own; and each is deterministic, whatever the number of threads (tests/test_native.py). `FUSED_STEPS` maps
a model's `native_step` name to its kernel. Why they are faster than XLA here: docs/performance.md, "Where the time goes".

Huge pages. `huge_page_copy(x, huge_page)` is a copy of x whose memory was advised MADV_HUGEPAGE before
the copy wrote it (pages.cc); pages.py uses it to put the tables on huge pages.

Text vectors. `text_rows(words, vectors)` gives the lines of vectors_io.save_text, the same bytes as its
Python formatter ("%.9g"), from text_rows.cc (std::to_chars), two blocks at once.

Row kernels. `apply_rows(table, parts, scale, max_dup)` is rows.apply_rows_reference (the duplicate cap,
then one scatter-add) performing the same float operations in the same order: the same bits.
`apply_span_rows` is rows.apply_span_rows_reference likewise. They serve the bucketed and per-window
layouts on one device.

The build. On first use the sources here are compiled for `-march=$W2V_JAX_NATIVE_MARCH` (default
`native`) and cached (builder.py: the compiler, the flags, the cache and its checks). `python -m
w2v_jax.native build` does it ahead of time; `start_build()` does it on a background thread (api.train
calls it first, so the build overlaps reading the corpus), and `status()` waits for it. `status()` says
whether the kernels run here and, if not, why in one line: the engine puts that line in the run's first
line and summary.json, and runs the pure-JAX step instead; `build_record()` is the loaded library's build
record (its -march and what the compiler resolved it to), for summary["engine"]. W2V_JAX_NATIVE=0 switches
the backend off.
"""
from w2v_jax.native import builder  # noqa: F401  (native.builder: the build, its flags and cache)
from w2v_jax.native.library import (Status, _load, available, build, build_record, start_build,  # noqa: F401
                                    status)
from w2v_jax.native.steps import (FUSED_STEPS, HOGWILD_STEPS, _reference_steps, apply_rows,  # noqa: F401
                                  apply_span_rows, cbow_hs_span_step, cbow_neg_span_step,
                                  cbow_neg_span_step_reference, huge_page_copy, huge_page_zeros,
                                  sgram_hs_span_step, sgram_neg_span_step, sgram_neg_span_step_reference,
                                  span_step_reference)
from w2v_jax.native.text import text_rows  # noqa: F401
from w2v_jax.native.threads import Contention, contention, core_round_trip_ns  # noqa: F401
