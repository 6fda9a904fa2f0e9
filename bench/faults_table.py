"""The fault suites' figures as one table: sums the rows the suites appended to
``var/faults/counts.jsonl`` (``POSTERM_FAULTS_DIR`` to read elsewhere). ``scripts/faults.sh``
clears the file, runs the suites at a stated size and calls this."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = (("sales", "sales run"), ("crashes", "crashes injected"), ("sales_lost", "sales lost"),
           ("hq_duplicates", "events duplicated at HQ"), ("inputs", "inputs tried"),
           ("inputs_crashed", "inputs that crashed anything"))


def load(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(rows: list[dict[str, object]]) -> str:
    suites: dict[str, dict[str, int]] = {}
    for row in rows:
        into = suites.setdefault(str(row["suite"]), dict.fromkeys((c for c, _ in COLUMNS), 0))
        for column, _title in COLUMNS:
            into[column] += int(row.get(column, 0))  # type: ignore[call-overload]
    total = {c: sum(s[c] for s in suites.values()) for c, _ in COLUMNS}
    head = "| suite | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [head, "|---|" + "---:|" * len(COLUMNS)]
    for name, figures in sorted(suites.items()):
        lines.append(f"| {name} | " + " | ".join(str(figures[c]) for c, _ in COLUMNS) + " |")
    lines.append("| **all** | " + " | ".join(f"**{total[c]}**" for c, _ in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> int:
    path = Path(os.environ.get("POSTERM_FAULTS_DIR", ROOT / "var" / "faults")) / "counts.jsonl"
    rows = load(path)
    if not rows:
        print(f"no figures in {path}: run the suites first (scripts/faults.sh)", file=sys.stderr)
        return 1
    sizes = sorted({str(row.get("size")) for row in rows})
    print(f"size {', '.join(sizes)}; {len(rows)} suite runs from {path}")
    print(table(rows))
    for row in rows:
        if row.get("notes"):
            print(f"- {row['suite']}: {row['notes']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
