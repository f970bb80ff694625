from inbound.main import main

raise SystemExit(main())
