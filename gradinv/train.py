"""Entry point: ``python gradinv/train.py dataset=... model=... defense=...`` trains and tests."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import the package from the repository, not its folder's modules.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from gradinv.cli import entry_point  # noqa: E402
from gradinv.utility import train  # noqa: E402

#: One training cell; the sweep's objective is its test accuracy.
main = entry_point(train, "train", lambda outcome: outcome["metrics"]["test_accuracy"])

if __name__ == "__main__":
    main()
