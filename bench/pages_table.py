"""The page table of BENCHMARKS.md from two runs of bench_pages.py (``--json``).

    .venv/bin/python bench/pages_table.py pages-10k.json pages-1m.json

One row per page: queries, req/s and share of the floor at both sizes, p95 and its ratio to
the floor's p95 at the larger size; a last line counts the rows at >= 0.2 of the floor.
"""

import argparse
import json
from pathlib import Path

TARGET_SHARE = 0.2


def load(path: str) -> dict:
    return json.loads(Path(path).read_text())


def _cell(result: dict, key: str, fmt: str) -> str:
    if key not in result:
        return result.get("error", "–")
    return format(result[key], fmt)


def table(small: dict, large: dict) -> str:
    def floor_line(run: dict) -> str:
        floor = run["floor"]
        return (
            f"floor at {run['requests']:,}: median {floor['rps']} req/s (runs "
            f"{', '.join(str(r) for r in floor['runs'])}), p95 {floor['p95_ms']} ms; "
            f"{run['machine']}; {run['date']}"
        )

    by_key = {(p["role"], p["name"]): p for p in small["pages"]}
    lines = [
        floor_line(small),
        floor_line(large),
        "",
        f"| role | page | queries | req/s at {small['requests']:,} | share | "
        f"req/s at {large['requests']:,} | share | p95 ms | p95 / floor p95 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    reached = total = 0
    for page in large["pages"]:
        other = by_key.get((page["role"], page["name"]), {"result": {}, "queries": "–"})
        r_small, r_large = other["result"], page["result"]
        total += 1
        shares = [r.get("share", 0) for r in (r_small, r_large)]
        reached += all(s >= TARGET_SHARE for s in shares)
        lines.append(
            f"| {page['role']} | {page['name']} | {page['queries']} | "
            f"{_cell(r_small, 'rps', '.1f')} | {_cell(r_small, 'share', '.2f')} | "
            f"{_cell(r_large, 'rps', '.1f')} | {_cell(r_large, 'share', '.2f')} | "
            f"{_cell(r_large, 'p95_ms', '.0f')} | {_cell(r_large, 'p95_ratio', '.1f')} |"
        )
    lines += ["", f"{reached} of {total} pages reach {TARGET_SHARE} of the floor at both sizes."]
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("small", help="bench_pages.py --json of the smaller database")
    parser.add_argument("large", help="bench_pages.py --json of the larger database")
    args = parser.parse_args(argv)
    text = table(load(args.small), load(args.large))
    print(text)
    return text


if __name__ == "__main__":
    main()
