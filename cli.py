"""`python cli.py ...` is `pairzoo ...`: a shim for running from a checkout without installing."""

from pairzoo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
