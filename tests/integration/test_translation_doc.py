"""docs/translation.md is generated from the code's tables and lossy lists: it must be current."""

import subprocess
import sys

from conftest import REPO_ROOT


def test_translation_doc_is_current():
    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/gen-translation-doc.py"),
                        "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
