from shelfsense.cli import main

raise SystemExit(main())
