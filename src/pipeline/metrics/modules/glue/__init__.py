"""The directory ``evaluate.load`` takes for the ``glue`` metric module, whose script is ``glue.py``
(a package, so that it installs with the rest)."""
