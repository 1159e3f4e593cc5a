"""``netvolume protocols``: the bundled trial protocols and their criteria."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the ``protocols`` command."""
    p = sub.add_parser(
        "protocols",
        help="list the trial protocols and their criteria",
        description="List the bundled trial protocols (the five seed protocols) with their "
        "criteria, or one protocol in full; --schema prints the clinical facts schema.",
    )
    p.add_argument("name", nargs="?", help="show this protocol (name or .toml path) in full")
    p.add_argument(
        "--schema", action="store_true", help="print the clinical facts schema (Markdown)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _criterion(c: Any) -> dict[str, Any]:
    doc = {"id": c.id, "kind": c.kind, "text": c.text, "rule": c.rule.describe()}
    if c.applies_if is not None:
        doc["applies_if"] = c.applies_if.describe()
    doc["source"] = c.source
    if c.note:
        doc["note"] = c.note
    return doc


def run(args: argparse.Namespace) -> int:
    """Execute ``protocols``; return the exit code."""
    from netvolume.trials import clinical_schema_markdown, load_protocol, protocol_names

    if args.schema:
        print(clinical_schema_markdown())
        return 0
    names = [args.name] if args.name else list(protocol_names())
    protocols = [load_protocol(n) for n in names]
    if args.json:
        doc = [
            {
                "name": p.name,
                "title": p.title,
                "version": p.version,
                "seed": p.seed,
                "reference_date": list(p.reference_date),
                "criteria": [_criterion(c) for c in p.criteria],
            }
            for p in protocols
        ]
        print(json.dumps(doc, indent=1, ensure_ascii=False))
        return 0
    for p in protocols:
        print(f"{p.name}  (v{p.version}, seed {p.seed})")
        print(f"  {p.title}")
        print(f"  evaluated at: {', or '.join(p.reference_date)}")
        for c in p.criteria:
            print(f"  - {c.id} [{c.kind}]: {c.text}")
            if args.name:
                print(f"      rule:   {c.rule.describe()}")
                if c.applies_if is not None:
                    print(f"      if:     {c.applies_if.describe()}")
                print(f"      source: {c.source}")
                if c.note:
                    print(f"      note:   {c.note}")
        print()
    return 0
