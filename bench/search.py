"""How fast the catalog search answers on a large catalog: 10,000 items, mixed queries.

Builds a 10,000-item catalog from the sample catalog (content/data): each sample item is
copied with a varied name (a district, a variant or a qualifier put before or after it,
e.g. 「西湖区居民身份证换领（加急）」), so names, pinyin and initials all differ. Then it
runs a few thousand queries of the kinds citizens type: 1-, 2- and 3+-character Chinese
substrings, full pinyin with and without spaces, initials, English words, everyday
keywords, and words that only appear in the guides' text; and prints p50, p99 and max per
kind and overall. Run from the repository root:

    .venv/bin/python bench/search.py            # 10,000 items, 3,000 queries, 3 runs
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import percentile
from kiosq.content.catalog import SAMPLE, initials, load_files, pinyin, write_catalog
from kiosq.content.model import ItemGuide
from kiosq.content.search import Searcher

DISTRICTS = ["西湖区", "上城区", "拱墅区", "滨江区", "萧山区", "余杭区", "临平区", "钱塘区", "富阳区", "临安区",
             "桐庐县", "淳安县", "建德市", "开发区", "高新区"]
VARIANTS = ["", "（加急）", "（网上预约）", "（港澳台居民）", "（外籍人员）", "（补正）", "（变更）", "（延续）",
            "（注销）", "（跨省通办）", "（承诺制）", "（老年人）"]
TEXT_WORDS = ["户口簿", "照片", "复印件", "结婚证", "营业执照", "劳动合同", "银行卡", "承诺书", "委托书", "产权证明"]


def big_catalog(items: list[ItemGuide], n: int, rng: random.Random) -> list[ItemGuide]:
    out = []
    for i in range(n):
        base = items[i % len(items)]
        district = rng.choice(DISTRICTS)
        name = f"{district}{base.name}{rng.choice(VARIANTS)}" if i >= len(items) else base.name
        out.append(base.model_copy(update={"code": f"{base.code}-{i:05d}"[:28] if i >= len(items) else base.code,
                                           "name": name}))
    return out


def queries(items: list[ItemGuide], n: int, rng: random.Random) -> list[tuple[str, str]]:
    kinds = []
    for _ in range(n):
        item = rng.choice(items)
        kind = rng.choice(["zh1", "zh2", "zh3", "pinyin", "pinyin_spaced", "initials", "english", "keyword", "text"])
        name = item.name
        if kind == "zh1":
            q = rng.choice(name)
        elif kind == "zh2":
            start = rng.randrange(max(1, len(name) - 1))
            q = name[start:start + 2]
        elif kind == "zh3":
            start = rng.randrange(max(1, len(name) - 3))
            q = name[start:start + rng.randint(3, 5)]
        elif kind == "pinyin":
            q = pinyin(name[:rng.randint(2, 4)])
        elif kind == "pinyin_spaced":
            q = " ".join(pinyin(c) for c in name[:3])
        elif kind == "initials":
            q = initials(name[rng.randrange(max(1, len(name) - 3)):][:3])
        elif kind == "english":
            q = rng.choice(item.name_en.split())
        elif kind == "keyword":
            q = rng.choice(item.keywords) if item.keywords else name[:2]
        else:
            q = rng.choice(TEXT_WORDS)
        kinds.append((kind, q))
    return kinds


def run(db: Path, qs: list[tuple[str, str]]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    with Searcher(db) as s:
        for _kind, q in qs[:200]:  # warm the page cache
            s.search(q)
        for kind, q in qs:
            start = time.perf_counter()
            s.search(q)
            times.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
    return times


def pct(values: list[float], p: float) -> float:
    return percentile(sorted(values), p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Example: .venv/bin/python bench/search.py --items 10000 --queries 3000")
    parser.add_argument("--items", type=int, default=10_000, help="catalog size (default 10000)")
    parser.add_argument("--queries", type=int, default=3_000, help="queries per run (default 3000)")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    sample = load_files(SAMPLE)
    items = big_catalog(sample, args.items, rng)
    qs = queries(items, args.queries, rng)
    with tempfile.TemporaryDirectory(prefix="kiosq-search-bench-") as tmp:
        db = Path(tmp) / "catalog.sqlite"
        start = time.perf_counter()
        write_catalog(db, items)
        build_s = time.perf_counter() - start
        runs = [run(db, qs) for _ in range(args.runs)]
    report: dict[str, Any] = {"items": args.items, "queries": args.queries, "runs": args.runs,
                              "build_seconds": round(build_s, 2), "kinds": {}}
    for kind in sorted(runs[0]):
        report["kinds"][kind] = {f"p{p}": round(statistics.median(pct(r[kind], p) for r in runs), 2) for p in (50, 99)}
        report["kinds"][kind]["max"] = round(statistics.median(max(r[kind]) for r in runs), 2)
    every = [[t for ts in r.values() for t in ts] for r in runs]
    report["all"] = {"p50": round(statistics.median(pct(a, 50) for a in every), 2),
                     "p99": round(statistics.median(pct(a, 99) for a in every), 2),
                     "max": round(statistics.median(max(a) for a in every), 2)}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(f"kiosq search: {args.items} items (built in {build_s:.1f} s), {args.queries} queries x {args.runs} runs")
        for kind, f in report["kinds"].items():
            print(f"  {kind:<14} p50 {f['p50']:6.2f} ms   p99 {f['p99']:6.2f} ms   max {f['max']:6.2f} ms")
        a = report["all"]
        print(f"  {'all':<14} p50 {a['p50']:6.2f} ms   p99 {a['p99']:6.2f} ms   max {a['max']:6.2f} ms")
        print("target: p99 <= 10 ms: " + ("MET" if a["p99"] <= 10 else "NOT MET"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
