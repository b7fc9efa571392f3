from authproxy.cli.main import main

raise SystemExit(main())
