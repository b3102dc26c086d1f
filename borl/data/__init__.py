"""Episodes, the crash-safe episode store, normalisation and replay sampling (no simulator here)."""
