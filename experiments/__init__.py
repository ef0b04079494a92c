"""Command-line experiments: thin absl-flag layers over `w2v_jax.api`."""
