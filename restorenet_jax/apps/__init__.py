"""The commands: train (`python -m restorenet_jax.main`), evaluate, restore, and serve (the web service and its
page). Each module holds one command's argument parsing and orchestration; the work is done by the layers below.

The top layer, beside `convert` and `bench`: may import anything in the package, and nothing imports it.
"""
