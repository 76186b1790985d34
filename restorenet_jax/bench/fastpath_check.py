"""The fast block paths against the plain jnp path on whatever device JAX has (the GPU check runs it first).

    python -m restorenet_jax.bench.fastpath_check --out results.json [--quick] [--modes plain fast]

For each case (a model, an odd input size, a compute dtype, plain or bucketed (`valid`) or TLC) the same random
parameters and input go through the model built with each kernel mode; the forward outputs and (where the case
says) the gradients of a random projection of the output with respect to every parameter are compared with the first mode's by
‖fast − plain‖ / ‖plain‖. Bounds: float32 1e-5 (the project's parity bound; matmuls at 'highest' precision so
TF32 does not blur it), bfloat16 2e-2 (two bf16 programs round differently: the operands carry 8 bits, and the
sums are reassociated). A non-finite value never passes. Exit status 1 when any case fails.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from restorenet_jax.bench import harness
from restorenet_jax.models.arch import GOPRO_W64, BaselineArch, ExtraArch, ModelArch

BOUNDS = {"float32": 1e-5, "bfloat16": 2e-2}


def cases(quick: bool) -> list[dict]:
    """The cases: full-width levels (width 64 up to 512 channels, two repeated blocks where the official model has
    many) on a device, tiny widths for a CPU smoke run. Gradients where the training path differs (plain and
    bucketed inputs feed no training; TLC is inference-only)."""
    if quick:
        arch, size = BaselineArch(8, (1, 1), 2, (1, 1), 1, 2), (21, 30)
    else:
        arch, size = BaselineArch(64, (1, 1, 1, 2), 2, (1, 1, 1, 1), 1, 2), (67, 93)
    base = ModelArch(kind="baseline", backbone=arch)
    tlc = ModelArch(kind="baseline", backbone=arch, tlc=True, train_size=(16, 16) if quick else (64, 64))
    extra = ExtraArch(width=arch.width, enc_blk_nums=arch.enc_blk_nums, middle_blk_num=arch.middle_blk_num,
                      dec_blk_nums=arch.dec_blk_nums)
    rn = ModelArch(kind="restorenet", deblur=arch, denoise=arch, extra=extra)
    out = []
    for dtype in ("float32", "bfloat16"):
        out.append(dict(name=f"baseline/{dtype}", arch=base, size=size, dtype=dtype, valid=False, grad=True))
        out.append(dict(name=f"baseline-valid/{dtype}", arch=base, size=size, dtype=dtype, valid=True, grad=False))
    out.append(dict(name="baseline-tlc/float32", arch=tlc, size=size, dtype="float32", valid=False, grad=False))
    out.append(dict(name="restorenet/bfloat16", arch=rn, size=size, dtype="bfloat16", valid=False, grad=False))
    return out


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def run_case(case: dict, modes: list[str], seed: int = 0) -> dict:
    """Forward and gradient relative errors of every mode against modes[0] for one case."""
    arch, dtype = case["arch"], case["dtype"]
    params = harness.random_params(arch, seed)
    h, w = case["size"]
    key = jax.random.PRNGKey(seed)
    x = jax.random.uniform(key, (2, h, w, 3), jnp.float32)
    cot = jax.random.normal(jax.random.fold_in(key, 1), (2, h, w, 3), jnp.float32)
    valid = None
    if case["valid"]:
        # A bucket bigger than the input: the valid region is the input's padded size, the rest is zeros.
        m = arch.pad_multiple
        valid = jnp.asarray([-(-h // m) * m, -(-w // m) * m], jnp.int32)
        x = jnp.pad(x, ((0, 0), (0, m), (0, 2 * m), (0, 0)))
        cot = jnp.pad(cot, ((0, 0), (0, m), (0, 2 * m), (0, 0)))
    results = {}
    for mode in modes:
        model = harness.suite_model(arch, dtype, mode)

        def loss(p, model=model):
            y = model.apply({"params": p}, x) if valid is None else model.apply({"params": p}, x, valid)
            if valid is not None:  # outputs beyond the valid region are meaningless by contract
                y = y[:, :h, :w]
                return jnp.sum(y * cot[:, :h, :w]), y
            return jnp.sum(y * cot), y

        if case["grad"]:
            (_, y), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
        else:
            y, grads = jax.jit(lambda p, f=loss: f(p)[1])(params), {}
        results[mode] = (np.asarray(y), jax.tree_util.tree_map(np.asarray, grads))
    ref_y, ref_g = results[modes[0]]
    row = {"case": case["name"], "dtype": dtype, "size": [h, w], "bound": BOUNDS[dtype], "modes": {}}
    for mode in modes[1:]:
        y, g = results[mode]
        flat_ref, flat = jax.tree_util.tree_leaves(ref_g), jax.tree_util.tree_leaves(g)
        grad_err = _rel(np.concatenate([v.ravel() for v in flat]),
                        np.concatenate([v.ravel() for v in flat_ref])) if flat else 0.0
        out_err = _rel(y, ref_y)
        row["modes"][mode] = {"output_rel": out_err, "grad_rel": grad_err,
                              "ok": out_err <= BOUNDS[dtype] and grad_err <= BOUNDS[dtype]}
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.bench.fastpath_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--quick", action="store_true", help="tiny widths (a CPU smoke run)")
    p.add_argument("--modes", nargs="+", default=["plain", "fast"],
                   help="kernel modes; the first is the reference (default: plain fast)")
    p.add_argument("--only", nargs="+", help="case names to run (default: all)")
    args = p.parse_args(argv)
    if len(args.modes) < 2:
        p.exit(2, "error: --modes needs a reference and at least one mode to compare\n")
    unknown = [m for m in args.modes if m not in harness.KERNEL_MODES]
    if unknown:
        p.exit(2, f"error: kernel mode(s) {unknown} not available in this version (available: "
               f"{list(harness.KERNEL_MODES)})\n")
    jax.config.update("jax_default_matmul_precision", "highest")
    rows = []
    for case in cases(args.quick):
        if args.only and case["name"] not in args.only:
            continue
        start = time.perf_counter()
        try:
            row = run_case(case, args.modes)
        except Exception as e:  # noqa: BLE001 -- one broken case must not hide the others
            row = {"case": case["name"], "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        print(json.dumps(row), flush=True)
    ok = bool(rows) and all("error" not in r and all(m["ok"] for m in r["modes"].values()) for r in rows)
    report = {"device": jax.local_devices()[0].device_kind, "modes": args.modes, "ok": ok, "cases": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    print(f"fast paths {'agree with' if ok else 'DIFFER from'} {args.modes[0]} on {report['device']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
