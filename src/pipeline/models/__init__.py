"""Models: building and re-heading them (build), storing and loading artifacts (store), family adapters
(families), physically pruned shapes (structure), compact sparse storage (compact), GPU inference paths (accel).
"""
