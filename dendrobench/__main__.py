from dendrobench.cli import main

raise SystemExit(main())
