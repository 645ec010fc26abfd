#!/usr/bin/env python3
"""supervisord entry point of the bus process (the events bus); the code lives in the arimonitor package."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from arimonitor.procmain import main

if __name__ == "__main__":
    sys.exit(main("bus"))
