"""Checkpoint converters between the official PyTorch format and model directories: the one official-key table
(`key_map`), architecture detection (`detect`), `torch_to_flax`, `flax_to_torch`, DANet (`danet`), and the PyTorch
models with the official key names (`torch_models`, used for reference checks and the benchmark).

A top layer beside the commands: imports `models` and `data`; torch is imported only where a function needs it.
"""
