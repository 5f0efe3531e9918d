"""The directory ``evaluate.load`` takes for the ``squad`` metric module, whose script is ``squad.py``
(a package, so that it installs with the rest)."""
