"""Knowledge distillation: loss terms (losses) and the student-training loss (kd)."""
