"""Moved: the import closure lives in ``tools/code_deps.py``, the writer of ``dvc.yaml`` in ``tools/dvc_yaml.py``.

Kept as an alias: tests import ``ROOT`` (and the closure helpers) from here, and
``python tests/import_closure.py --write`` runs ``python -m tools.dvc_yaml`` (the one way code deps are written).
"""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script: tools/ is beside tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.code_deps import (  # noqa: E402,F401
    PLUGIN_PACKAGES, ROOT, SRC, TEMPLATED, closure, compress, expand, expected_code_deps, helpers, module_file,
    plugin_files, rel,
)

if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        from tools.dvc_yaml import main

        sys.exit(main([]))
    sys.exit("usage: python tests/import_closure.py --write   (the same as: python -m tools.dvc_yaml)")
