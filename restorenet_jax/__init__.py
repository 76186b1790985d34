"""restorenet-jax: a JAX/Flax reimplementation of RestoreNet (joint deblur + denoise for dark CCTV images).

Subpackages, lowest layer first; a module imports only from its own layer or a lower one (tests/test_layout.py
checks this, function-local imports included):

    configs     built-in default configurations (ConfigDicts only; experiment files live in the repository's configs/)
    models      the networks (Baseline, RestoreNet, serial, DANet), their one architecture record, model directories,
                and the one jitted forward pass (`models.predictor.Predictor`)
    data        dataset builders, the resumable grain pipeline, degradations, prepare/export logic
    evaluation  metrics with BasicSR conventions and scoring over examples
    training    the loop, the step, optimiser and freezing, sharding, checkpoints, initialisation, losses, logs
    inference   `Restorer` (a converted model dir or a training workdir), engines (JAX, ONNX Runtime, OpenVINO),
                tiling, image/video I/O
    deploy      a model as an ONNX graph, an OpenVINO IR or a jax.export (StableHLO) artifact (same layer as inference)
    apps, convert, bench
                the commands: train, evaluate, restore, serve; checkpoint converters; the benchmark harness

Data flows one way: config -> data -> training -> checkpoints -> inference -> evaluate / restore / serve. The
modules `main`, `restore`, `serve`, `evaluate`, `prepare_data`, `export_degraded`, `export` (and the `bench` package) are the
`python -m restorenet_jax.<name>` entry points.
"""

__version__ = "0.1.0"

# Nothing leaves the machine. OpenVINO's converter imports the `openvino_telemetry` package as soon as `openvino` is
# imported; that package writes a client id and statistics under ~/intel, forks a sender process from inside the
# (multithreaded) JAX process and contacts an analytics host. With the name blocked here, before any engine can import
# openvino, OpenVINO falls back to its own no-op stub (as when the package is not installed), and so does NNCF.
# Every command and the library API import this package first, so this one line covers every engine.
import sys as _sys

_sys.modules.setdefault("openvino_telemetry", None)
