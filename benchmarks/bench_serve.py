"""Serving speed: loopml's server side by side with MLflow's and a bare Starlette app.

The same scikit-learn model (StandardScaler + LogisticRegression on the demo data's 30
numeric features) served on 127.0.0.1, one worker each, by:

- loopml, prediction log on (``loopml serve``: validation, variants, log writer thread);
- loopml, log off (``loopml serve --no-log``);
- MLflow (``mlflow models serve --env-manager local``, the model saved with
  ``mlflow.sklearn.save_model``);
- a bare Starlette app on uvicorn around the same model (JSON in, predict_proba, JSON out:
  the floor for an ASGI server with this model, no validation, no log).

A bounded async client (httpx) sends --requests requests (default 5,000) at concurrency 8
and 32, one row and 100 rows per request; each server is warmed up first. Printed: requests
per second, p50 and p99 latency per server and setting, and the ratios loopml (log on) /
MLflow and loopml / bare. The client shares the machine with the server (on 2 shared cores
it takes a good part of one).

    python benchmarks/bench_serve.py [--requests 5000] [--skip-mlflow]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from loopml.server._process import free_port, wait_until_up

BIN = Path(sys.executable).parent
SETTINGS = [(8, 1), (32, 1), (8, 100), (32, 100)]  # (concurrency, rows per request)


def build(root: Path) -> tuple[Any, list[str], list[dict[str, Any]]]:
    """A loopml project with the model as champion; the fitted model, features, rows."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from loopml.baselines import run_baselines
    from loopml.data import add_dataset, split_dataset
    from loopml.demo import make_demo_data
    from loopml.models import add_model, model_data
    from loopml.project import init_project, open_project
    from loopml.registry import promote

    frame, features = make_demo_data()
    frame = frame[["id", *features, "label"]]
    init_project(root, task="binary").close()
    with open_project(root) as p:
        v = add_dataset(p, frame, name="demo")
        split_dataset(p, v.ref, by="stratified", test=0.3, seed=0)
        run_baselines(p, only=["dummy"])
        md = model_data(p)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(md.train[features], md.train["label"])
        sio.dump(model, root / "model.skops")
        add_model(p, root / "model.skops", name="logit", measure=False)
        promote(p, "logit@1", force=True, reason="benchmark")
        test = md.test[features]
    rows = [{str(k): float(v) for k, v in r.items()} for r in test.to_dict("records")]
    return model, features, rows


BARE_APP = """
import json, numpy as np, pandas as pd, skops.io as sio
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

MODEL = sio.load({path!r}, trusted=sio.get_untrusted_types(file={path!r}))
FEATURES = {features!r}

async def predict(request):
    data = json.loads(await request.body())
    frame = pd.DataFrame(data["records"])[FEATURES]
    proba = MODEL.predict_proba(frame)[:, 1]
    out = [{{"prediction": int(p > 0.5), "score": float(p)}} for p in proba]
    return Response(json.dumps({{"predictions": out}}), media_type="application/json")

app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
"""


def start(cmd: list[str], url: str, probe: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(log, "wb") as out:  # mlflow runs `uvicorn` from the PATH
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_up(proc, url + probe, timeout=120, log=log)
    except RuntimeError as exc:
        raise SystemExit(f"{cmd[0]}: {exc}") from None
    return proc


async def load(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    import httpx

    latencies: list[float] = []
    queue = list(range(len(bodies)))
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while queue:
            i = queue.pop()
            t0 = time.perf_counter()
            r = await client.post(
                url, content=bodies[i], headers={"content-type": "application/json"}
            )
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{errors} requests to {url} failed")
    return len(bodies) / wall, latencies


def bodies_for(kind: str, rows: list[dict[str, Any]], n_rows: int, n: int) -> list[bytes]:
    import json

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        pick = [rows[i] for i in rng.integers(0, len(rows), n_rows)]
        body = {"dataframe_records": pick} if kind == "mlflow" else {"records": pick}
        out.append(json.dumps(body).encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="loopml-bench-serve-"))
    proj = tmp / "proj"
    print(f"building the project and the model in {tmp} ...", flush=True)
    model, features, rows = build(proj)
    (tmp / "bare_app.py").write_text(
        textwrap.dedent(BARE_APP.format(path=str(proj / "model.skops"), features=features))
    )
    servers: list[tuple[str, str, list[str], str]] = []  # name, kind, command, route
    loopml = [str(BIN / "loopml"), "-C", str(proj), "serve"]
    servers.append(("loopml (log on)", "loopml", loopml, "/predict"))
    servers.append(("loopml (log off)", "loopml", [*loopml, "--no-log"], "/predict"))
    if not args.skip_mlflow:
        import mlflow.sklearn

        mlflow.sklearn.save_model(model, str(tmp / "mlflow_model"))
        mlflow_cmd = [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            str(tmp / "mlflow_model"),
            "--env-manager",
            "local",
            "-w",
            "1",
            "-h",
            "127.0.0.1",
        ]
        servers.append(("mlflow", "mlflow", mlflow_cmd, "/invocations"))
    bare = [
        sys.executable,
        "-m",
        "uvicorn",
        "bare_app:app",
        "--no-access-log",
        "--log-level",
        "warning",
        "--host",
        "127.0.0.1",
    ]
    servers.append(("bare starlette", "bare", bare, "/predict"))

    results: dict[tuple[str, int, int], tuple[float, float, float]] = {}
    logged: dict[str, int] = {}
    for name, kind, cmd, route in servers:
        port = free_port()
        cmd = [*cmd, "--port" if kind != "mlflow" else "-p", str(port)]
        url = f"http://127.0.0.1:{port}"
        probe = "/health" if kind != "bare" else "/"
        print(f"starting {name} ...", flush=True)
        env_log = tmp / f"{kind}-{port}.log"
        proc = start(cmd, url, probe if kind != "mlflow" else "/ping", tmp, env_log)
        sent_rows = 0
        try:
            for conc, n_rows in SETTINGS:
                asyncio.run(load(url + route, bodies_for(kind, rows, n_rows, 200), conc))
                bodies = bodies_for(kind, rows, n_rows, args.requests)
                rps, lat = asyncio.run(load(url + route, bodies, conc))
                sent_rows += (200 + args.requests) * n_rows
                p50, p99 = (float(v) * 1000 for v in np.percentile(lat, [50, 99]))
                results[(name, conc, n_rows)] = (rps, p50, p99)
                print(
                    f"  c={conc:<2} rows={n_rows:<3} {rps:8.0f} req/s  p50 {p50:6.1f} ms  "
                    f"p99 {p99:6.1f} ms",
                    flush=True,
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        if name == "loopml (log on)":
            from loopml.serving import read_log

            logged[name] = read_log(proj).num_rows
            print(f"  the log holds {logged[name]:,} rows of {sent_rows:,} sent", flush=True)

    print()
    print(
        f"{args.requests:,} requests per setting, 1 worker per server, loopback, "
        f"{os.cpu_count()} cores shared with the client"
    )
    head = f"{'server':<17}{'c':>3}{'rows':>5}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
    print(head)
    for (name, conc, n_rows), (rps, p50, p99) in results.items():
        print(f"{name:<17}{conc:>3}{n_rows:>5}{rps:>8.0f}{p50:>8.1f}{p99:>8.1f}")
    print()
    print(f"{'ratios (log on)':<17}{'c':>3}{'rows':>5}{'rps/mlf':>8}{'p99/mlf':>8}{'rps/bare':>9}")
    for conc, n_rows in SETTINGS:
        ours = results[("loopml (log on)", conc, n_rows)]
        bare_r = results[("bare starlette", conc, n_rows)]
        mlf = results.get(("mlflow", conc, n_rows))
        r1 = f"{ours[0] / mlf[0]:>8.2f}" if mlf else f"{'-':>8}"
        r2 = f"{ours[2] / mlf[2]:>8.2f}" if mlf else f"{'-':>8}"
        print(f"{'loopml':<17}{conc:>3}{n_rows:>5}{r1}{r2}{ours[0] / bare_r[0]:>9.2f}")
    print("targets: rps/mlf >= 2, p99/mlf <= 0.5; moonshot rps/bare >= 1/1.2 = 0.83")
    ours_bare = [
        results[("loopml (log on)", c, r)][0] / results[("bare starlette", c, r)][0]
        for c, r in SETTINGS
    ]
    print(f"median loopml/bare rps: {statistics.median(ours_bare):.2f}")


if __name__ == "__main__":
    main()
