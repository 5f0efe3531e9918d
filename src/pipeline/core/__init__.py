"""What every stage shares and nothing model-specific: errors, process set-up, atomic files, plug-in registries."""
