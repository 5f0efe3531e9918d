"""The directory ``evaluate.load`` takes for the ``squad`` metric module (its script is ``squad.py``); a package so that it installs."""
