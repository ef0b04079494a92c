"""Session-wide settings: float64 on (gradient checks need it), set once since toggling is sticky."""
import os
import tempfile

import jax

# The CPU kernels (w2v_jax/native.py) are built once for the session, in a fresh directory that the CLI
# subprocesses inherit: the tests build them from source and write nothing to ~/.cache.
os.environ.setdefault("W2V_JAX_NATIVE_DIR", tempfile.mkdtemp(prefix="w2v_jax_native_"))

jax.config.update("jax_enable_x64", True)
