"""Reading ``params.yaml`` (the loader) and the settings several stages share (args)."""
