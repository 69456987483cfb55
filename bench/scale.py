"""Benchmark: scale-out. Batch scoring on Ray against a plain loop; the engine with 1 and 2 worker processes.

Measured in one run, over the same synthetic site (radgate.synth, every vendor profile, DX/CR headers and
pixel data of the profiles' sizes) and the bundled demo model:

1. **Batch scoring** (what ``radgate score --folder`` does):
   - *plain*: one process, a loop over the files: read, route, decode, render, preprocess (the gateway's
     functions, as ``radgate score`` uses them), ONNX Runtime in batches, same thread settings;
   - *Ray, 1 worker* and *Ray, 2 workers*: ``radgate score --folder DIR --num-cpus N --actors N`` as a user
     runs it, in a fresh process each (Ray's start-up is reported apart and not counted in the rate).
   Figures: images/s over the whole command and in steady state (after its first batch is out: the actors'
   start-up and model load excluded); Ray overhead at 1 worker = 1 - rate(Ray 1) / rate(plain) (target <= 15 %); scaling
   efficiency at 2 workers = rate(Ray 2) / (2 x rate(Ray 1)) (target >= 0.8).
2. **Engine on PostgreSQL** (a throwaway cluster, Debian's server binaries): the site imported and
   assembled into jobs, then ``radgate worker --kind engine`` processes (1, then 2) run them; the rate is
   jobs / (last finish - first start), from the jobs' own timestamps (so the workers' start-up is not
   counted).

Every figure depends on the cores free at the time: the load average is printed before and after. Run
``python bench/scale.py --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def make_site(root: Path, studies: int) -> Path:
    from radgate.synth import generate_site
    from radgate.synth.scenario import builtin_scenario

    base = builtin_scenario("demo-site")
    scenario = replace(base, months=1, studies_per_month=(studies,), prevalence=(0.3,))
    generate_site(root / "site", scenario, seed=7)
    return root / "site" / "dicom"


def make_data_dir(data: Path, url: str = "") -> tuple[str, str]:
    from radgate.config import load_settings
    from radgate.db import database_for
    from radgate.db.datadir import init_data_dir
    from radgate.models.registry import ensure_default_models

    data.mkdir(parents=True, exist_ok=True)
    if url:
        (data / "radgate.toml").write_text(f'[database]\nurl = "{url}"\n[inference]\nexplanations = false\n')
    settings = load_settings(data_dir=data, environ={})
    init_data_dir(settings)
    db = database_for(settings)
    with db.session() as s:
        models = ensure_default_models(s, settings.data_dir)
    db.dispose()
    if not models:
        raise SystemExit("the bundled demo model is missing (radgate/data/models)")
    return models[0].name, models[0].version


def plain_loop(data: Path, folder: Path, model: str, version: str, batch_size: int) -> dict[str, float]:
    """One process, no Ray: the same steps as radgate score's tasks and actor, one after the other."""
    import numpy as np

    from radgate.config import load_settings
    from radgate.db import database_for
    from radgate.imaging import to_display
    from radgate.imaging.decode import decode_pixels, read_dataset
    from radgate.inference.model import LoadedModel
    from radgate.inference.preprocess import to_tensor
    from radgate.inference.runtime import RuntimeOptions
    from radgate.ingest.folder import iter_files
    from radgate.models.registry import get_model, open_model
    from radgate.routing.deployment import intended_use_rules
    from radgate.routing.features import features_from_dataset
    from radgate.routing.router import evaluate_rules

    settings = load_settings(data_dir=data, environ={})
    db = database_for(settings)
    with db.session() as s:
        installed = get_model(s, model, version)
    db.dispose()
    package = open_model(installed)
    loaded = LoadedModel.load(
        package,
        RuntimeOptions(providers=("CPUExecutionProvider",), intra_op_threads=settings.inference.intra_op_threads),
    )
    prep, rules = package.manifest.preprocessing, intended_use_rules(package.manifest.intended_use)
    files = list(iter_files([folder]))
    start = time.perf_counter()
    pending: list[np.ndarray] = []
    scored = 0
    for path in files:
        ds = read_dataset(path)
        fits, _ = evaluate_rules(rules, features_from_dataset(ds))
        if fits:
            decode_pixels(ds, max_bytes=settings.ingest.max_decoded_bytes)
            pending.append(to_tensor(to_display(ds, max_bytes=settings.ingest.max_decoded_bytes), prep))
        if len(pending) == batch_size or (path == files[-1] and pending):
            outputs = loaded.runtime.run(np.stack(pending))
            scored += sum(1 for i in range(len(pending)) if loaded.scores(outputs, i))
            pending = []
    seconds = time.perf_counter() - start
    return {"images": len(files), "scored": scored, "seconds": seconds, "rate": len(files) / seconds}


def ray_score(data: Path, folder: Path, model: str, version: str, workers: int, batch_size: int) -> dict[str, Any]:
    """``radgate score`` in a fresh process with a local Ray of ``workers`` CPUs and as many actors."""
    code = f"""
import json, sys, time
from pathlib import Path
import ray
t0 = time.perf_counter()
ray.init(num_cpus={workers}, include_dashboard=False, log_to_driver=False)
startup = time.perf_counter() - t0
from radgate.config import load_settings
from radgate.db import database_for
from radgate.scoring import ScoreRequest, score
settings = load_settings(data_dir=Path({str(data)!r}), environ={{}})
db = database_for(settings)
request = ScoreRequest({model!r}, {version!r}, Path({str(data / f"ray{workers}.parquet")!r}),
                       folder=Path({str(folder)!r}), actors={workers}, batch_size={batch_size})
marks = []
t0 = time.perf_counter()
report = score(settings, db, request, progress=lambda done, total: marks.append((time.perf_counter(), done)))
seconds = time.perf_counter() - t0
(t_first, n_first), (t_last, n_last) = marks[0], marks[-1]
steady = (n_last - n_first) / (t_last - t_first) if t_last > t_first else float("nan")
print("RESULT " + json.dumps({{"images": report.instances, "series": len(report.series), "seconds": seconds,
                               "startup_s": startup, "rate": report.instances / seconds,
                               "first_result_s": t_first - t0, "steady_rate": steady}}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=3600)
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        raise SystemExit(f"radgate score with {workers} worker(s) failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(line[-1].removeprefix("RESULT "))
    return result


def engine_on_postgres(root: Path, folder: Path, counts: list[int]) -> dict[int, dict[str, float]]:
    from sqlalchemy import delete, func, select, update

    from radgate.assembly import Assembler
    from radgate.config import load_settings
    from radgate.db import database_for
    from radgate.engine import Job, Prediction
    from radgate.engine.queue import EnqueueHook
    from radgate.ingest import InstanceStore, import_paths
    from radgate.policy.tables import PublishIntent
    from radgate.routing import DeploymentSpec, sync_deployments
    from tests.pg import PostgresCluster

    cluster = PostgresCluster()
    cluster.start()
    results: dict[int, dict[str, float]] = {}
    try:
        data = root / "pg-data"
        model, version = make_data_dir(data, cluster.url)
        settings = load_settings(data_dir=data, environ={}, assembly__quiet_period_s=0.0)
        db = database_for(settings)
        with db.session() as s:
            sync_deployments(s, [DeploymentSpec("bench", model, version, mode="silent")])
        import_paths(InstanceStore(settings, db), [folder])
        Assembler(settings, db, [EnqueueHook(3)]).run_once()
        with db.session() as s:
            total = s.scalar(select(func.count(Job.id))) or 0
        for count in counts:
            with db.session() as s:
                s.execute(delete(PublishIntent))
                s.execute(delete(Prediction))
                s.execute(
                    update(Job).values(status="queued", attempts=0, lease_owner=None, lease_expires_at=None,
                                       started_at=None, finished_at=None, last_error=None)
                )
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            procs = [
                subprocess.Popen([sys.executable, "-m", "radgate", "worker", "--kind", "engine", "--data-dir",
                                  str(data)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for _ in range(count)
            ]
            try:
                deadline = time.monotonic() + 3600
                while time.monotonic() < deadline:
                    with db.session() as s:
                        left = s.scalar(select(func.count(Job.id)).where(Job.status.in_(("queued", "running"))))
                    if not left:
                        break
                    time.sleep(0.5)
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(timeout=60)
            with db.session() as s:
                first = s.scalar(select(func.min(Job.started_at)))
                last = s.scalar(select(func.max(Job.finished_at)))
                done = s.scalar(select(func.count(Job.id)).where(Job.status == "done")) or 0
            seconds = (last - first).total_seconds() if first and last else float("nan")
            results[count] = {"jobs": total, "done": done, "seconds": seconds, "rate": done / seconds}
        db.dispose()
    finally:
        cluster.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=40, help="synthetic studies (about 1.5 images each)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-engine", action="store_true", help="skip the PostgreSQL engine figures")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    print(_load())
    with tempfile.TemporaryDirectory(prefix="radgate-bench-scale-") as tmp:
        root = Path(tmp)
        folder = make_site(root, args.studies)
        data = root / "data"
        model, version = make_data_dir(data)
        plain = plain_loop(data, folder, model, version, args.batch_size)
        ray1 = ray_score(data, folder, model, version, 1, args.batch_size)
        ray2 = ray_score(data, folder, model, version, 2, args.batch_size)
        figures: dict[str, Any] = {
            "images": plain["images"],
            "plain_images_per_s": plain["rate"],
            "ray1_images_per_s": ray1["rate"],
            "ray2_images_per_s": ray2["rate"],
            "ray_startup_s": [ray1["startup_s"], ray2["startup_s"]],
            "ray1_overhead": 1 - ray1["rate"] / plain["rate"],
            "ray2_scaling_efficiency": ray2["rate"] / (2 * ray1["rate"]),
            # after the first batch came out (actor start-up and model load excluded)
            "ray1_steady_images_per_s": ray1["steady_rate"],
            "ray2_steady_images_per_s": ray2["steady_rate"],
            "ray1_steady_overhead": 1 - ray1["steady_rate"] / plain["rate"],
            "ray2_steady_scaling_efficiency": ray2["steady_rate"] / (2 * ray1["steady_rate"]),
            "ray_first_result_s": [ray1["first_result_s"], ray2["first_result_s"]],
        }
        print(f"batch scoring, {plain['images']} images, model {model} {version}")
        print(f"  plain loop      {plain['rate']:8.1f} images/s")
        print(f"  Ray, 1 worker   {ray1['rate']:8.1f} images/s  overhead {figures['ray1_overhead']:+.1%} "
              "(target <= 15%)")
        print(f"  Ray, 2 workers  {ray2['rate']:8.1f} images/s  scaling efficiency "
              f"{figures['ray2_scaling_efficiency']:.2f} (target >= 0.8)")
        print(f"  (Ray start-up, not counted: {ray1['startup_s']:.1f} s, {ray2['startup_s']:.1f} s)")
        print(f"  steady state, after the first batch ({ray1['first_result_s']:.1f} s, "
              f"{ray2['first_result_s']:.1f} s in): Ray 1 {ray1['steady_rate']:.1f} images/s "
              f"(overhead {figures['ray1_steady_overhead']:+.1%}), Ray 2 {ray2['steady_rate']:.1f} images/s "
              f"(efficiency {figures['ray2_steady_scaling_efficiency']:.2f})")
        if not args.no_engine:
            engine = engine_on_postgres(root, folder, [1, 2])
            figures["engine_jobs_per_s"] = {str(k): v["rate"] for k, v in engine.items()}
            figures["engine_scaling"] = engine[2]["rate"] / engine[1]["rate"]
            print(f"engine on PostgreSQL, {engine[1]['jobs']} jobs")
            for k, v in engine.items():
                print(f"  {k} worker process(es) {v['rate']:8.2f} jobs/s ({v['done']} done in {v['seconds']:.1f} s)")
            print(f"  2 / 1 workers: {figures['engine_scaling']:.2f}x")
    print(_load())
    figures["load_after"] = _load()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
