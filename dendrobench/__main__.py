from dendrobench.cli.main import main

raise SystemExit(main())
