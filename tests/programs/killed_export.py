"""``export.py`` that stops just before it publishes, for tests/test_export_job.py to kill:

    python tests/programs/killed_export.py MARKER [export.py flags]

Once every file is written, just before the rename that publishes the version directory, it
writes the temporary directory's path to MARKER and sleeps. Run from the repository root (the
root goes on sys.path, as for export.py itself).
"""

import os
import runpy
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from inception import fileio  # noqa: E402


def main(marker, flags):
    def stall(directory):  # called once everything is written, just before the rename
        with open(marker, "w") as f:
            f.write(directory)
        time.sleep(600)

    fileio._fsync_tree = stall
    sys.argv = ["export.py", *flags]
    runpy.run_path(os.path.join(ROOT, "export.py"), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
