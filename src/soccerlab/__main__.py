import sys

from soccerlab.cli import main

sys.exit(main())
