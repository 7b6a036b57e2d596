"""Crash tests: real always-on processes killed with SIGKILL at chosen and at random instants."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
