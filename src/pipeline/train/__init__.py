"""Training: the one loop every training stage uses (loop), and training a model on a task (task)."""
