"""Training: the one loop every training stage uses (loop), its batches (batches), curves and checkpoints
(run_files), and supervised training on a task with per-epoch validation (supervised)."""
