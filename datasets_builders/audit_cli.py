"""`larb audit A B`: the clips two datasets share, by source identity and by audio (`datasets_builders.audit`)."""

from __future__ import annotations

import argparse
import json


def _cmd_audit(args: argparse.Namespace) -> int:
    from datasets_builders.audit import audit

    report = audit(args.a, args.b)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    shared = report["by_source_id"]
    for side in ("a", "b"):
        info = report[side]
        print(f"{side}: {info['what']}: {info['rows']:,} rows, {info['source_ids']:,} source ids")
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(shared["by_source"].items())) or "none"
    print(f"shared by source id: {shared['count']:,} ({kinds}); {shared['share_of_a']:.1%} of a, "
          f"{shared['share_of_b']:.1%} of b")
    if shared["examples"]:
        print("e.g. " + ", ".join(shared["examples"]))
    if "by_content_hash" in report:
        files = report["audio_files"]
        same, near = report["by_content_hash"], report["near_duplicates"]
        print(f"audio: {files['a']:,} files in a, {files['b']:,} in b")
        print(f"same decoded audio (sha256): {same['count']:,} ({same['share_of_a']:.1%} of a)"
              + (": e.g. " + ", ".join(f"{e['a']} = {e['b']}" for e in same["examples"][:3]) if same["count"] else ""))
        print(f"near-duplicates ({near['method']}): {near['count']:,} ({near['share_of_a']:.1%} of a)"
              + (": e.g. " + ", ".join(f"{e['a']} ~ {e['b']} (BER {e['bit_error_rate']})"
                                        for e in near["examples"][:3]) if near["count"] else ""))
    else:
        print("audio: not compared (one side has no audio; give a build folder or a task folder on both sides)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `larb audit` to the harness's parser."""
    p = subparsers.add_parser("audit", help="clips two datasets share: by source id (Freesound, YouTube, ...), "
                                            "same audio and near-duplicate audio")
    p.add_argument("a", help="a 'larb data build --output' folder, a task id or folder, or an official metadata "
                             "file: Clotho metadata CSV, AudioCaps CSV, WavCaps JSON, WavText5K.csv, MACS.yaml, "
                             "an exclusion list")
    p.add_argument("b", help="another one")
    p.add_argument("--json", action="store_true", help='print {"by_source_id": {"count": N, "examples": [...]}, ...}')
    p.set_defaults(func=_cmd_audit)
