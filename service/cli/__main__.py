"""``python -m service.cli``: the ``spreadwatch`` command."""

from service.cli.main import main

raise SystemExit(main())
