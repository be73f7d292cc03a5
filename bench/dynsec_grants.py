"""How fast the single-node tier provisions vehicle credentials in Mosquitto's dynamic security.

    .venv/bin/python bench/dynsec_grants.py --steps 1000,1000,2000,4000

Every vehicle the registry adds gets a dynsec role and client (`MosquittoDynsec.grant`).
This grants the VINs of the ingest benchmark in steps through `grant_many` (250 commands per
control message) on a private broker and reports vehicles/s per step, and the size of the
dynsec JSON file, which Mosquitto 2.0 rewrites after every changing command. It explains why
`bench/ingest.py` inserts its 10k-1M vehicles straight into the database and lets a fleet
gateway publish for them instead of granting each one.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autocloud.adapters.mosquitto import DYNSEC_FILE_NAME, MosquittoDynsec
from bench.broker import running_broker
from bench.fleet import vin_of

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/dynsec_grants.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="1000,1000,2000,4000", help="vehicles granted per step")
    p.add_argument("--timeout-s", type=float, default=120.0, help="per dynsec control message")
    p.add_argument("--budget-s", type=float, default=600.0, help="stop after this much time")
    args = p.parse_args(argv)
    steps = [int(x) for x in args.steps.split(",") if x]
    out: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="autocloud-dynsec-"))
    started = time.time()
    with running_broker(work / "mosquitto") as broker:
        dynsec = MosquittoDynsec(
            broker.host,
            broker.port,
            broker.admin_user,
            broker.admin_password,
            timeout=args.timeout_s,
        )
        have = 0
        try:
            for step in steps:
                if time.time() - started > args.budget_s:
                    out.append({"from": have, "to": have + step, "measured": False})
                    break
                items = [(vin_of(i), secrets.token_urlsafe(32)) for i in range(have, have + step)]
                t0 = time.perf_counter()
                dynsec.grant_many(items)
                seconds = time.perf_counter() - t0
                size = (work / "mosquitto" / DYNSEC_FILE_NAME).stat().st_size
                row = {
                    "from": have,
                    "to": have + step,
                    "seconds": round(seconds, 2),
                    "vehicles_per_s": round(step / seconds, 1),
                    "dynsec_json_bytes": size,
                    "broker_rss_mib": round((broker.rss_kb() or 0) / 1024, 1),
                    "measured": True,
                }
                print(json.dumps(row))
                out.append(row)
                have += step
        finally:
            dynsec.close()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"dynsec-grants-{stamp}.json"
    path.write_text(json.dumps({"arguments": vars(args), "steps": out}, indent=2) + "\n")
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
