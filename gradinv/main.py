"""Entry point: ``python gradinv/main.py [overrides]`` or ``-m`` for a sweep over the grid."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import the package from the repository, not its folder's modules.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from gradinv.cli import entry_point  # noqa: E402
from gradinv.experiment import run  # noqa: E402

#: One grid cell; the sweep's objective is the cell's PSNR.
main = entry_point(run, "config", lambda outcome: outcome["metrics"]["psnr"])

if __name__ == "__main__":
    main()
