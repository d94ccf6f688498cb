"""Training (one trainer for every model), baselines and honest walk-forward evaluation."""
