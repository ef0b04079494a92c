"""Session-wide settings: float64 on (gradient checks need it), set once since toggling is sticky."""
import jax

jax.config.update("jax_enable_x64", True)
