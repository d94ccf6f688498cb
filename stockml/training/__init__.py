"""Stage 4, training: one trainer for every model, time splits, windows, baselines, walk-forward."""
