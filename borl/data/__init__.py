"""Episodes, the crash-safe episode store, normalisation, replay sampling and dataset import/export."""
