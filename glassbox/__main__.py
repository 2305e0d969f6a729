import sys

from glassbox.cli import main

sys.exit(main())
