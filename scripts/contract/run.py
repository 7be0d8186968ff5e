"""Runs schemathesis against a freshly started reference server, once per role.

Usage: python run.py --server BINARY --st SCHEMATHESIS [--max-examples N]

Starts the server on a free loopback port with a fresh data directory and relaxed rate
limits, registers one user per role (viewer, trader, admin), grants the roles with the
server's `roles grant` subcommand and a few trading accounts with `accounts grant`, then
runs `schemathesis run` with every check and every phase (examples, coverage, fuzzing,
stateful) as each user in turn, with the per-operation
exceptions of `schemathesis.toml` (requests no schema can tell from valid ones). Exits
non-zero if any run finds a failure or the server answers any 5xx, and prints the
server log on failure.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROLES = ("viewer", "trader", "admin")
ENTITLED_ACCOUNTS = ("0", "A", "a", "-", "_", "ACC-1")


def post_json(base: str, path: str, payload: dict) -> dict:
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


# A firm configuration and reference prices, so that accepted orders are filled and
# reported, and the compliance routes have something to serve.
FIRM = """
lei = "5493001KJTIIGC8Y1R12"
branch_country = "FR"
authority = "FR"
algorithm = "FINSECFILL1"

[[instruments]]
symbol = "A"
isin = "US0378331005"
class = "equity"
venue = "XNAS"
currency = "USD"

[[instruments]]
symbol = "AAPL"
isin = "US0378331005"
class = "equity"
venue = "XNAS"
currency = "USD"
"""
PRICES = "A,100\nAAPL,100\n"


def start_server(binary: str, data_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    work = data_dir.parent
    firm = work / "firm.toml"
    firm.write_text(FIRM)
    prices = work / "prices.csv"
    prices.write_text(PRICES)
    log = open(log_path, "w")
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
    process = subprocess.Popen(
        [
            binary,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
            "--rate-limits",
            str(HERE / "rate-limits.toml"),
            # The fuzzer fails logins by the hundred, some in the contract users' names:
            # without the lockout's waits (the hooks' logins use a remembered device, which
            # the recovery lock does not hold back either).
            "--login-backoff-secs",
            "0",
            # The harness registers its users and reads their ids from the answers.
            "--registration",
            "open",
            "--firm-config",
            str(firm),
            "--reference-prices",
            str(prices),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 120
    pattern = re.compile(r"listening on (http://[0-9.:]+)")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        match = pattern.search(log_path.read_text())
        if match:
            return process, match.group(1)
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server did not start within 120 s:\n{log_path.read_text()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", required=True, help="the finsec-reference-server binary")
    parser.add_argument("--st", required=True, help="the schemathesis executable")
    parser.add_argument("--max-examples", type=int, default=50)
    # One worker: with several, hypothesis (6.x on CPython 3.11) sometimes fails inside its own
    # lambda-description cache ("AST constructor recursion depth mismatch"), a runtime error
    # that is not the server's.
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # schemathesis runs in a temporary directory (its cache stays out of the checkout), so
    # relative paths given on the command line are resolved here.
    args.server = str(Path(args.server).resolve())
    args.st = str(Path(args.st).resolve())

    work = Path(tempfile.mkdtemp(prefix="finsec-contract-"))
    data_dir = work / "data"
    log_path = work / "server.log"
    server, base = start_server(args.server, data_dir, log_path)
    failed = False
    try:
        users = {}
        for role in ROLES:
            name = f"contract-{role}"
            password = secrets.token_urlsafe(24)
            post_json(base, "/auth/register", {"username": name, "password": password})
            if role != "viewer":
                subprocess.run(
                    [args.server, "--data-dir", str(data_dir), "roles", "grant", name, role],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            # Accounts the generated orders often name, so that some of them are placed.
            for account in ENTITLED_ACCOUNTS:
                subprocess.run(
                    [args.server, "--data-dir", str(data_dir), "accounts", "grant", name, account],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            users[role] = (name, password)

        for role, (name, password) in users.items():
            print(f"\n== schemathesis as {role} ({base}) ==", flush=True)
            env = dict(
                os.environ,
                FINSEC_CONTRACT_BASE=base,
                FINSEC_CONTRACT_USER=name,
                FINSEC_CONTRACT_PASSWORD=password,
                SCHEMATHESIS_HOOKS="hooks",
                PYTHONPATH=str(HERE),
            )
            report = work / f"junit-{role}.xml"
            command = [
                args.st,
                "--no-color",
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                str(args.max_examples),
                "--workers",
                str(args.workers),
                "--seed",
                os.environ.get("FINSEC_CONTRACT_SEED", "20261203"),
                "--report",
                "junit",
                "--report-junit-path",
                str(report),
            ]
            # In the scratch directory, so schemathesis's cache stays out of the checkout.
            result = subprocess.run(command, env=env, cwd=work)
            if result.returncode != 0:
                failed = True
                print(f"schemathesis as {role}: FAILED (exit {result.returncode})", flush=True)
            else:
                print(f"schemathesis as {role}: passed", flush=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

    log = log_path.read_text()
    panics = [line for line in log.splitlines() if "panicked" in line]
    server_errors = [
        line for line in log.splitlines() if re.search(r"\bstatus=5\d\d\b", line)
    ]
    if panics or server_errors:
        failed = True
        print("server panics or 5xx answers:", *panics, *server_errors[:50], sep="\n")
    if failed:
        print(f"\nserver log: {log_path}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
