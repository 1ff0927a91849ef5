"""`python -m multitarget_exporter` runs the same CLI as `multitarget-exporter`."""

from multitarget_exporter.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
