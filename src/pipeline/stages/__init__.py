"""The logic of each DVC stage: ``stages/<name>.py`` parses its command line, loads its params and calls
``<name>_stage`` from ``pipeline.stages.<name>``, which reads the inputs, runs the work and writes the outputs.

This package is the top layer: it imports the concept packages (data, models, train, prune, ...), and nothing
in them imports it.
"""
