"""``python -m biotag.training CONFIG.json [--resume]``: train from a config file."""

from __future__ import annotations

import argparse
import logging
import sys

from biotag.errors import BiotagError
from biotag.training import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m biotag.training", description=__doc__)
    parser.add_argument("config", help="TrainConfig JSON file")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        path = train(TrainConfig.from_json(args.config), resume=args.resume)
    except BiotagError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
