import sys

from headpose.cli import main

sys.exit(main())
