"""Makes the modules named in PYHOST_TEST_BLOCK unimportable (a server "not installed").

On a child's PYTHONPATH (with ``python=``, so a fresh interpreter runs it),
it simulates an environment without uvicorn, waitress or gunicorn.
"""
import os
import sys


class _Blocker:
    blocked = set(filter(None, os.environ.get("PYHOST_TEST_BLOCK", "").split(",")))

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError("No module named %r" % name, name=name)
        return None


sys.meta_path.insert(0, _Blocker())
