import sys

from borl.cli import main

sys.exit(main())
