"""train_and_evaluate: initial parameters (or brief backbone pre-training), the training stage, periodic
evaluation with the best model kept, and the final report on the held-out split.

Every evaluation, the final one included, offers its parameters to `best/`: a run that evaluates only at the end
(`eval_every_steps = 0`, as the demo does) still leaves a best model for `--best`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from absl import logging
from PIL import Image

from restorenet_jax.data import pipeline
from restorenet_jax.evaluation import families, scoring
from restorenet_jax.models import model_dir
from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.predictor import Predictor
from restorenet_jax.training import checkpoints, cluster
from restorenet_jax.training.config_check import check_config
from restorenet_jax.training.initialization import initial_params
from restorenet_jax.training.stage import MakeIter, model_arch, run_stage
from restorenet_jax.training.step import eval_params


def write_run_files(config: ml_collections.ConfigDict, arch: ModelArch, workdir: Path) -> None:
    """config.json and arch.json (the latter makes the workdir loadable by Restorer.from_checkpoint)."""
    if not cluster.is_main():
        return
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
    (workdir / model_dir.ARCH_FILE).write_text(json.dumps({"arch": arch.to_dict(), "info": {"source": "training"}},
                                                         indent=2))


class Evaluation:
    """Scores parameters on the held-out split with one `Predictor`: the examples are loaded once, the forward is
    compiled once per eval shape, and a training state's device parameters are used in place (no re-upload)."""

    def __init__(self, config: ml_collections.ConfigDict, arch: ModelArch):
        self.config = config
        self.arch = arch
        self.examples: list[dict] = []
        self.predictor: Predictor | None = None

    def score(self, params: Any) -> tuple[dict, list[np.ndarray]]:
        """(scoring.score_examples' result, the first config.eval.num_samples input | output | target strips).

        Collective on several processes: each scores its own contiguous share of the examples and the per-group
        sums are combined, so every process gets the report of the whole split (equal to one process's, to
        rounding). The sample strips are made on process 0 only (it writes the images)."""
        cfg = self.config
        if not self.examples:
            self.examples.extend(pipeline.make_eval_examples(cfg.data, split=cfg.eval.split, seed=cfg.seed,
                                                             limit=cfg.eval.limit or None))
        if self.predictor is None:
            # Evaluation sets may hold many image sizes: keep each one's program for the whole run.
            self.predictor = Predictor(self.arch, params, max_programs=256)
        else:
            self.predictor.set_params(params)
        keys = sorted({k for ex in self.examples for k in scoring.group_keys(ex)})
        sums = np.zeros((len(keys), len(scoring.SCORE_FIELDS)), np.float64)
        samples = range(min(cfg.eval.num_samples, len(self.examples))) if cluster.is_main() else range(0)
        strips: dict[int, np.ndarray] = {}
        mine = cluster.my_part(len(self.examples))
        for i in mine:
            ex = self.examples[i]
            row, out = scoring.score_one(self.predictor, ex)
            for key in scoring.group_keys(ex):
                sums[keys.index(key)] += [row[f] for f in scoring.SCORE_FIELDS]
            if i in samples:
                strips[i] = scoring.sample_strip(ex["input"], out, ex["target"])
        for i in samples:  # samples outside this process's share: their outputs only
            if i not in strips:
                ex = self.examples[i]
                out = np.clip(self.predictor(ex["input"]), 0.0, 1.0)
                strips[i] = scoring.sample_strip(ex["input"], out, ex["target"])
        total = cluster.sum_over_processes(sums)
        result = scoring.summarize({k: dict(zip(scoring.SCORE_FIELDS, total[j])) for j, k in enumerate(keys)})
        return result, [strips[i] for i in samples]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path,
                       make_train_iter: MakeIter | None = None) -> dict:
    """Initialises (or resumes), trains, evaluates; returns the final report (also WORKDIR/report.json).

    Raises config_check.ConfigError before any work when a field is unusable."""
    check_config(config)
    workdir = Path(workdir).absolute()
    arch = model_arch(config)
    write_run_files(config, arch, workdir)
    started = time.perf_counter()
    resuming = checkpoints.TrainCheckpointer(workdir).latest_step() is not None
    params = initial_params(config, arch, workdir, make_train_iter, resuming)

    evaluation = Evaluation(config, arch)
    # A resumed run continues from the best it had already kept, rather than replacing it with a worse one.
    best = {"psnr": recorded_best_psnr(workdir)}

    def keep_if_best(step: int, p: Any, psnr: float) -> None:
        # Every process has the same combined result, so all take this branch together (the gather of
        # parameters sharded across processes is collective); process 0 writes.
        if psnr > best["psnr"]:
            best["psnr"] = psnr
            host = cluster.host_tree(p)
            if cluster.is_main():
                model_dir.save_model_dir(workdir / checkpoints.BEST, host, arch, overwrite=True,
                                         info={"step": step, "psnr": float(psnr)})

    def evaluate_fn(step, p, writer):
        result, rows = evaluation.score(p)
        for group, values in result["groups"].items():  # per dataset and input kind
            writer.scalars(step, {k: v for k, v in values.items() if k != "count"}, prefix=f"eval/{group}")
        if rows:
            writer.image(step, "eval_samples", scoring.stack_rows(rows))  # input | output | target
        keep_if_best(step, p, result["overall"]["output_psnr"])
        return {k: v for k, v in result["overall"].items() if k != "count"}

    state = run_stage(config, arch, workdir, params, make_train_iter, evaluate_fn)
    final = eval_params(state)
    report = final_report(config, arch, workdir, evaluation, final)
    keep_if_best(int(state.step), final, report["overall"]["output_psnr"])
    report["wall_time_s"] = time.perf_counter() - started
    if cluster.is_main():
        (workdir / "report.json").write_text(json.dumps(report, indent=2))
        logging.info("report: %s", json.dumps(report["overall"]))
    return report


def recorded_best_psnr(workdir: Path) -> float:
    """The validation PSNR of the model kept in WORKDIR/best (-inf when there is none, or it records none)."""
    if not model_dir.is_model_dir(workdir / checkpoints.BEST):
        return -np.inf
    try:
        return float(model_dir.read_arch(workdir / checkpoints.BEST)[1].get("psnr", -np.inf))
    except (model_dir.ModelDirError, TypeError, ValueError):
        return -np.inf


def final_report(config: ml_collections.ConfigDict, arch: ModelArch, workdir: Path, evaluation: Evaluation,
                 params: Any) -> dict:
    """Scores the held-out split; writes side_by_side.png (input | output | target rows) and report.md."""
    result, rows = evaluation.score(params)
    table = scoring.format_table(result)
    if config.eval.get("families"):  # the gain per noise family, some held out of training
        result["per_family"] = families.score_families(
            evaluation.predictor, config.data, families.parse_list(config.eval.families),
            families.parse_list(config.eval.get("held_out_families", "")), kinds=config.eval.family_kinds,
            split=config.eval.split, seed=config.seed, limit=config.eval.limit or None)
        table += "\n\n" + families.format_families(result["per_family"])
        logging.info("gain per noise family (training noise: %s):\n%s", config.data.noise.kind,
                     families.format_families(result["per_family"]))
    if cluster.is_main() and rows:
        img = scoring.stack_rows(rows)
        Image.fromarray((img * 255 + 0.5).astype(np.uint8)).save(workdir / "side_by_side.png")
        (workdir / "report.md").write_text(table + "\n")
    return {**result, "steps": int(config.num_train_steps), "model": arch.kind}
