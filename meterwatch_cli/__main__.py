import sys

from meterwatch_cli.main import main

sys.exit(main())
