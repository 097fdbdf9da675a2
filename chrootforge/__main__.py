import sys

from chrootforge.cli import main

sys.exit(main())
