"""The directory ``evaluate.load`` takes for the ``glue`` metric module (its script is ``glue.py``); a package so that it installs."""
