"""The Python examples of docs/plug-in.md (its ```python blocks) run as written, from the repository root.

The repository is found from this file (python/tests/) or from $SLAK_REPO_ROOT (python/ci-check.sh runs a copy of
the tests outside the checkout); skipped when neither has docs/plug-in.md.
"""
import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def repo_root():
    for root in (os.environ.get("SLAK_REPO_ROOT"), os.path.join(HERE, "..", "..")):
        if root and os.path.exists(os.path.join(root, "docs", "plug-in.md")):
            return os.path.abspath(root)
    return None


class DocsExamplesTest(unittest.TestCase):
    def test_plug_in_python_examples_run(self):
        root = repo_root()
        if root is None:
            self.skipTest("docs/plug-in.md not found (set SLAK_REPO_ROOT)")
        with open(os.path.join(root, "docs", "plug-in.md")) as f:
            blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
        self.assertGreaterEqual(len(blocks), 2, "docs/plug-in.md has no Python examples")
        env = dict(os.environ)
        try:
            import slak_torch  # installed, or on sys.path already
            package_parent = os.path.dirname(os.path.dirname(os.path.abspath(slak_torch.__file__)))
        except ImportError:
            package_parent = os.path.join(root, "python")
        # The examples import the same slak_torch this process uses.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        for i, code in enumerate(blocks):
            run = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                                 timeout=300)
            self.assertEqual(run.returncode, 0, f"example {i + 1} of docs/plug-in.md failed:\n{code}\n{run.stdout}"
                                                f"\n{run.stderr}")
