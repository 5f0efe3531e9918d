"""The directory ``evaluate.load`` takes for the ``squad_v2`` metric module, whose script is ``squad_v2.py``
(a package, so that it installs with the rest)."""
