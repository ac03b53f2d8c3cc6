from pairzoo.cli import main

raise SystemExit(main())
