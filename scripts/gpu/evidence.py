"""The Python stages of scripts/gpu/evidence.sh: ``python scripts/gpu/evidence.py STAGE`` (env, smoke, speed, compile,
profile_graph, summary). Each stage writes ``$WORK/<stage>.json`` (the driver merges them into
``$OUT/results.json``), prints ``[stage] ...`` lines, and records a failing check's traceback instead of stopping.
``DRY=1``: tiny model and sizes, any device; what needs CUDA is reported as skipped, with the reason.

Everything measured goes through the toolkit's own code: ``ArmTrainer`` (eager step, ``--cuda-graph`` step,
round-robin models as ``--seeds`` trains them) and the benchmarks' ``trainer_images_per_s``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.common import training_images  # noqa: E402
from benchmarks.train_throughput import trainer_images_per_s  # noqa: E402
from robustbench_jpeg.config import RunOptions, TrainConfig  # noqa: E402
from robustbench_jpeg.device import resolve_device, training_backend  # noqa: E402
from robustbench_jpeg.train import ArmTrainer, resolve_config  # noqa: E402

DRY = os.environ.get("DRY") == "1"
WORK = Path(os.environ.get("WORK", "/tmp/evidence-work"))
OUT = Path(os.environ.get("OUT", "/tmp/evidence-out"))
DEV = resolve_device("auto")
CUDA = DEV.type == "cuda"
MODEL = os.environ.get("MODEL", "tiny" if DRY else "resnet56")
B = 64
STEPS = 4 if DRY else 100
ARMS = ("baseline", "jpegdl")
NO_CUDA = "skipped: no CUDA device (the dry run checks that the code runs, not the GPU)"


class Stage:
    """Results of one stage, rewritten to $WORK/<name>.json after every check."""

    def __init__(self, name: str) -> None:
        self.name, self.results = name, {"device": str(DEV), "dry": DRY, "model": MODEL}
        WORK.mkdir(parents=True, exist_ok=True)

    def check(self, label: str, fn, *args, **kwargs) -> None:
        start = time.time()
        try:
            value = fn(*args, **kwargs)
        except Exception:
            value = {"error": traceback.format_exc()[-3000:]}
        self.results[label] = value
        self.results.setdefault("seconds", {})[label] = round(time.time() - start, 2)
        print(
            f"[{self.name}] {label} ({self.results['seconds'][label]} s): {json.dumps(value, default=str)[:700]}",
            flush=True,
        )
        (WORK / f"{self.name}.json").write_text(json.dumps(self.results, indent=1, default=str))


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def trainer(arm: str, graph: bool = False, n: int | None = None, **options) -> ArmTrainer:
    config = resolve_config(TrainConfig(model=MODEL, dataset="cifar100-mini", epochs=10, batch_size=B))
    run = RunOptions(device=str(DEV), progress=False, checkpoint_every_s=0, cuda_graph=graph, **options)
    return ArmTrainer(config, run, arm, Path("/tmp/evidence-unused"), DEV, n_train=n or B * STEPS)


def started(t: ArmTrainer, steps: int, warm: int) -> ArmTrainer:
    """Begin an epoch over enough real images for ``warm`` + ``steps`` full steps and run the ``warm`` ones."""
    images, labels = training_images(B * (warm + steps))
    t.begin_epoch((images.to(DEV), labels.to(DEV)))
    for _ in range(warm):
        t.train_step()
    sync()
    return t


# ---------------------------------------------------------------------------------------------------- stages
def stage_env() -> None:
    s = Stage("env")

    def env():
        e = {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(),
            "cpus": os.cpu_count(),
        }
        if CUDA:
            p = torch.cuda.get_device_properties(0)
            e.update(
                name=p.name,
                capability=f"{p.major}.{p.minor}",
                sms=p.multi_processor_count,
                mem_gib=round(p.total_memory / 2**30, 1),
                cudnn=torch.backends.cudnn.version(),
            )
        for mod in ("torchvision", "torchattacks", "pandas", "yaml", "PIL", "numpy", "tqdm", "pytest"):
            try:
                e[mod] = getattr(__import__(mod), "__version__", "present")
            except Exception as exc:
                e[mod] = f"MISSING ({exc.__class__.__name__})"
        return e

    s.check("env", env)


def module_io(arm: str) -> dict:
    """dtype and memory format at the model's module boundaries during the eager training step."""
    t = trainer(arm)
    m, seen = t.model, {}
    first_conv = next(mod for mod in m.backbone.modules() if isinstance(mod, torch.nn.Conv2d))
    last_fc = [mod for mod in m.backbone.modules() if isinstance(mod, torch.nn.Linear)][-1]
    probes = {"jpeg": m.jpeg, "normalize": m.normalize, "first_conv": first_conv, "fc": last_fc}

    def hook(name):
        def record(_mod, inputs, output):
            x = inputs[0]
            seen.setdefault(
                name,
                {
                    "in": str(x.dtype),
                    "out": str(output.dtype),
                    "in_channels_last": x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last),
                },
            )

        return record

    handles = [mod.register_forward_hook(hook(name)) for name, mod in probes.items()]
    started(t, 0, 1)
    for h in handles:
        h.remove()
    params = sorted({str(p.dtype) for p in m.parameters()})
    return {"amp": t.amp, "channels_last": t.channels_last, "modules": seen, "parameters": params}


def syncs_per_step(arm: str, graph: bool) -> dict:
    """Every host synchronisation during steady-state steps, by the Python line that caused it."""
    if not CUDA:
        return {"skipped": NO_CUDA}
    steps = 20
    t = started(trainer(arm, graph=graph, n=B * 30), steps, 6 if graph else 2)
    where = collections.Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(steps):
                t.train_step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    for w in caught:
        if "synchroniz" in str(w.message):
            where[f"{Path(w.filename).name}:{w.lineno}"] += 1
    return {"steps": steps, "per_step": {k: v / steps for k, v in where.items()}, "total": sum(where.values())}


def profile_steps(arm: str, graph: bool, tables: list[str]) -> dict:
    """Kernels per step and the GPU-busy fraction (kernel time over wall time), from the profiler."""
    from torch.profiler import ProfilerActivity, profile

    steps = 3 if DRY else 30
    t = started(trainer(arm, graph=graph, n=B * 40), steps, 6 if graph else 2)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if CUDA else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            t.train_step()
        sync()
        wall = time.perf_counter() - start
    events = prof.events()
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    busy_ms = sum(e.time_range.elapsed_us() for e in kernels) / 1e3
    runtime = collections.Counter(e.name for e in events if e.name.startswith(("cuda", "cudaGraph")))
    sort = "cuda_time_total" if CUDA else "cpu_time_total"
    try:
        tables.append(
            f"===== {arm}, {'graph' if graph else 'eager'}, {steps} steps =====\n"
            + prof.key_averages().table(sort_by=sort, row_limit=25)
        )
    except Exception as exc:
        tables.append(f"===== {arm} table failed: {exc!r}")
    out = {
        "steps": steps,
        "wall_ms_per_step_profiled": round(wall / steps * 1e3, 3),
        "cpu_ops_per_step": round(sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CPU) / steps),
    }
    if CUDA:
        out.update(
            kernels_per_step=round(len(kernels) / steps, 1),
            gpu_busy_fraction=round(busy_ms / (wall * 1e3), 3),
            runtime_calls_per_step={k: round(v / steps, 1) for k, v in runtime.most_common(8)},
        )
    else:
        out["kernels"] = NO_CUDA
    return out


def graph_vs_eager(amp: str) -> dict:
    """The same JPEG-DL model trained 20 steps eagerly and through the captured step: how far apart they end."""
    if not CUDA:
        return {"skipped": NO_CUDA}
    opts = {"amp": amp, "channels_last": amp == "bf16"}
    runs = []
    for graph in (False, True):
        torch.manual_seed(0)
        t = started(trainer("jpegdl", graph=graph, n=B * 24, **opts), 0, 20)
        t.fold_sums(time.monotonic())
        flat = torch.cat([p.detach().float().flatten() for p in t.model.parameters()])
        runs.append((t.progress.loss_sum, flat, t.static.captures if t.static else 0))
    (la, pa, _), (lb, pb, captures) = runs
    return {
        "amp": amp,
        "captures": captures,
        "loss_sum_eager": la,
        "loss_sum_graph": lb,
        "loss_rel_diff": abs(la - lb) / abs(la),
        "weights_rel_diff": float((pa - pb).norm() / pa.norm()),
        "weights_max_abs_diff": float((pa - pb).abs().max()),
    }


def stage_smoke() -> None:
    s = Stage("smoke")
    tables: list[str] = []
    with training_backend(DEV):
        for arm in ARMS:
            s.check(f"module_io_{arm}", module_io, arm)
            for graph in (False, True):
                mode = "graph" if graph else "eager"
                if graph and not CUDA:
                    s.results[f"syncs_{arm}_{mode}"] = s.results[f"profile_{arm}_{mode}"] = {"skipped": NO_CUDA}
                    continue
                s.check(f"syncs_{arm}_{mode}", syncs_per_step, arm, graph)
                if graph:  # the profiler on graph replays can hang: stage profile_graph, run last
                    s.results[f"profile_{arm}_{mode}"] = {"skipped": "profiled last (stage profile_graph)"}
                    continue
                s.check(f"profile_{arm}_{mode}", profile_steps, arm, graph, tables)
                (OUT / "profile.txt").write_text("\n\n".join(tables))
        for amp in ("off", "bf16"):
            s.check(f"graph_vs_eager_{amp}", graph_vs_eager, amp)


def stage_profile_graph() -> None:
    """Kernels per replayed step and the GPU-busy fraction under the profiler. Known to hang on some versions
    (pytorch#135003, #75504, kineto#1165), so evidence.sh runs it last, under its own time cap."""
    s = Stage("profile_graph")
    path = OUT / "profile.txt"
    tables = [path.read_text()] if path.exists() else []
    with training_backend(DEV):
        for arm in ARMS:
            if not CUDA:
                s.check(f"profile_{arm}_graph", lambda: {"skipped": NO_CUDA})  # written to the results like a check
                continue
            s.check(f"profile_{arm}_graph", profile_steps, arm, True, tables)
            path.write_text("\n\n".join(tables))


@contextlib.contextmanager
def float32_precision(tf32: bool):
    """Matmuls and cuDNN convolutions in TF32 or in full float32 for the duration (cuDNN still autotuned)."""
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False, allow_tf32=tf32):
            yield
    finally:
        torch.set_float32_matmul_precision(saved)


def fp32_graph_rows(s: Stage, arm: str, steps: int, warm: int) -> None:
    """The step as a graph without autocast (no per-step cast kernels): full float32, and float32 with TF32."""
    fp32 = dict(amp="off", channels_last=True, graph=True)
    for tf32 in (False, True):
        with float32_precision(tf32):
            label = f"{arm}_{'tf32' if tf32 else 'fp32'}_graph"
            s.check(label, trainer_images_per_s, MODEL, [(arm, 0)], DEV, B, steps, warm, **fp32)


def stage_speed() -> None:
    """img/s of one model: fp32 NCHW eager, bf16 channels_last eager, bf16 channels_last graph; then 2 and 6 models
    round-robin (graphs on their own streams where available)."""
    s = Stage("speed")
    steps, warm = (3, 1) if DRY else (STEPS, 5)
    graph = CUDA
    with training_backend(DEV):
        for arm in ARMS:
            s.check(
                f"{arm}_fp32_nchw_eager",
                trainer_images_per_s,
                MODEL,
                [(arm, 0)],
                DEV,
                B,
                steps,
                warm,
                amp="off",
                channels_last=False,
            )
            s.check(f"{arm}_default_eager", trainer_images_per_s, MODEL, [(arm, 0)], DEV, B, steps, warm)
            if graph:
                s.check(
                    f"{arm}_default_graph", trainer_images_per_s, MODEL, [(arm, 0)], DEV, B, steps, warm, graph=True
                )
                fp32_graph_rows(s, arm, steps, warm)
        for seeds in (1, 3):
            jobs = [(arm, seed) for seed in range(seeds) for arm in ARMS]
            s.check(
                f"models_{len(jobs)}_{'graph' if graph else 'eager'}",
                trainer_images_per_s,
                MODEL,
                jobs,
                DEV,
                B,
                steps,
                warm,
                graph=graph,
            )
        if not graph:
            s.results["graph"] = NO_CUDA


def stage_compile() -> None:
    s = Stage("compile")
    steps, warm = (2, 1) if DRY else (STEPS, 5)
    with training_backend(DEV):
        for arm in ARMS:
            t0 = time.time()
            s.check(
                f"{arm}_compiled_eager_step",
                trainer_images_per_s,
                MODEL,
                [(arm, 0)],
                DEV,
                B,
                steps,
                warm,
                compile_=True,
            )
            s.results.setdefault("wall_incl_compile_s", {})[arm] = round(time.time() - t0, 1)


def stage_summary() -> None:
    """The short table printed last (and written to $OUT/summary.txt)."""
    r = json.loads((OUT / "results.json").read_text())
    lines = ["=" * 28 + " SUMMARY " + "=" * 28, f"stages: {'; '.join(r.get('stages', []))}"]
    env = (r.get("env") or {}).get("env", {})
    lines.append(
        f"env: {env.get('name', env.get('cuda_available'))} torch {env.get('torch')} "
        f"torchattacks {env.get('torchattacks')}"
    )
    for key, value in (r.get("speed") or {}).items():
        if key not in ("device", "dry", "model", "seconds"):
            lines.append(f"speed {key}: {round(value) if isinstance(value, float) else value} img/s")
    smoke = r.get("smoke") or {}
    for key, value in smoke.items():
        if key.startswith(("syncs_", "profile_", "graph_vs_eager", "module_io")):
            lines.append(f"{key}: {json.dumps(value, default=str)[:240]}")
    for key, value in (r.get("profile_graph") or {}).items():
        if key.startswith("profile_"):
            lines.append(f"{key}: {json.dumps(value, default=str)[:240]}")
    for key, value in (r.get("compile") or {}).items():
        if key.endswith("_step"):
            lines.append(f"compile {key}: {json.dumps(value, default=str)[:200]}")
    bench = OUT / "benchmarks.csv"
    if bench.exists():
        import csv

        for row in csv.DictReader(bench.open()):
            keep = {k: v for k, v in row.items() if v and k not in ("timestamp", "git_sha", "torch", "device", "path")}
            lines.append(f"bench: {keep}")
    text = "\n".join(lines)
    (OUT / "summary.txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    stage = sys.argv[1] if len(sys.argv) > 1 else ""
    stages = {
        "env": stage_env,
        "smoke": stage_smoke,
        "speed": stage_speed,
        "compile": stage_compile,
        "profile_graph": stage_profile_graph,
        "summary": stage_summary,
    }
    if stage not in stages:
        raise SystemExit(f"usage: evidence.py {{{','.join(stages)}}}")
    OUT.mkdir(parents=True, exist_ok=True)
    stages[stage]()
