"""Entry point for ``python -m gancomp``."""

from gancomp.cli import main

if __name__ == "__main__":
    main(prog_name="gancomp")
