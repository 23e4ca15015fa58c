"""Make a data set from a requirement spec, for ``ray job submit``::

    ray job submit --working-dir . -- python -m jobs.generate --spec specs/claims.yaml

Train (or load) -> sample -> evaluate -> write, with ``dataset_card.json``
beside the output (see engine/requirements/run.py). Paths in the spec are
read from the spec file's folder.
"""
from __future__ import annotations

import argparse
import sys

from engine.core.errors import SynthError
from engine.core.runtime import VERBOSE_HELP, set_verbose


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", required=True, help="requirement spec (YAML or JSON file; a dataset_card.json also works)")
    p.add_argument("--dry-run", action="store_true", help="validate the spec and print it; generate nothing")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = p.parse_args(argv)
    set_verbose(args.verbose)
    try:
        from engine.requirements.run import generate
        from engine.requirements.spec import load_spec

        if args.dry_run:
            print(load_spec(args.spec).to_yaml(), end="")
            return 0
        result = generate(args.spec)
    except SynthError as exc:
        print(f"jobs.generate: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {result.num_rows} {result.card['rows']['unit']}s to {', '.join(result.files)}")
    print(f"data card: {result.card_path}")
    print(f"reproduce with: {result.reproduce}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
