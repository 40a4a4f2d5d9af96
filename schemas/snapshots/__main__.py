from schemas.snapshots import main

raise SystemExit(main())
