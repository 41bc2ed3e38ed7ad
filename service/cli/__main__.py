"""``python -m service.cli``: the ``spreadwatch`` command."""

import sys

try:
    from service.cli.main import main
except KeyboardInterrupt:  # (Ctrl-C while Python imports the command itself)
    sys.stderr.write("spreadwatch: interrupted\n")
    raise SystemExit(130) from None

raise SystemExit(main())
