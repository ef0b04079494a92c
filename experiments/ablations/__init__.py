"""Scripts that reproduce published ablations on the dev corpus (docs/ablations.md)."""
