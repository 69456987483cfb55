"""Benchmark the phantom generator: images per second on one core, rendering alone and end to end.

Run: ``.venv/bin/python bench/synth.py [--profile siemens-dx] [--images 200] [--repeats 3] [--json]``

"render" times :func:`radgate.synth.render_image` alone; "site" times :func:`radgate.synth.generate_site`
(planning, rendering, building the DICOM dataset, writing the file and labels.csv) into a temporary folder.
Both report wall-clock and process CPU time per image: on a shared machine the CPU figure is the steadier
one. The target is >= 20 images/s at 512 x 512 (the siemens-dx profile's matrix) on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from radgate.synth import ImageSpec, Pneumothorax, generate_site, get_profile, render_image  # noqa: E402
from radgate.synth.scenario import single_profile_scenario  # noqa: E402

TARGET = 20.0


def bench_render(profile: str, n: int) -> tuple[float, float]:
    p = get_profile(profile)
    specs = [
        ImageSpec(
            p,
            "AP" if i % 5 == 0 else "PA",
            30 + i % 50,
            "FM"[i % 2],
            Pneumothorax("left", "apical", "moderate", 25.0) if i % 6 == 0 else None,
        )
        for i in range(n)
    ]
    render_image(specs[0], np.random.default_rng(0))  # warm caches
    t0, c0 = time.perf_counter(), time.process_time()
    for i, spec in enumerate(specs):
        render_image(spec, np.random.default_rng(i))
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def bench_site(profile: str, n_images: int) -> tuple[float, float, int]:
    # About 1.4 images per study (laterals), so ask for fewer studies than images.
    studies = max(1, int(n_images / 1.4))
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        summary = generate_site(Path(tmp) / "site", single_profile_scenario(profile, studies), seed=1)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return summary.images / wall, summary.images / cpu, summary.images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="siemens-dx")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    p = get_profile(args.profile)
    render = [bench_render(args.profile, args.images) for _ in range(args.repeats)]
    site = [bench_site(args.profile, args.images) for _ in range(args.repeats)]
    result = {
        "profile": args.profile,
        "matrix": f"{p.rows}x{p.columns}",
        "images": args.images,
        "repeats": args.repeats,
        "render_images_per_s_wall": round(statistics.median(r[0] for r in render), 1),
        "render_images_per_s_cpu": round(statistics.median(r[1] for r in render), 1),
        "site_images_per_s_wall": round(statistics.median(s[0] for s in site), 1),
        "site_images_per_s_cpu": round(statistics.median(s[1] for s in site), 1),
        "target_images_per_s": TARGET,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"synthetic phantoms, profile {args.profile} ({result['matrix']}), {args.images} images x {args.repeats}"
    )
    print(
        f"  render only : {result['render_images_per_s_wall']:6.1f} images/s wall, "
        f"{result['render_images_per_s_cpu']:6.1f} images/s CPU"
    )
    print(
        f"  site (DICOM): {result['site_images_per_s_wall']:6.1f} images/s wall, "
        f"{result['site_images_per_s_cpu']:6.1f} images/s CPU   (target >= {TARGET:g})"
    )
    print(
        f"  load average at the end: {result['load_average']:.2f} (2 cores shared; CPU figures are steadier)"
    )


if __name__ == "__main__":
    main()
