"""The benchmark harness: `python -m restorenet_jax.bench` (harness), its report and targets, analytic FLOPs, and
the PyTorch reference timings.

A top layer beside the commands: imports models, training (the step it times) and convert (the PyTorch models).
"""
