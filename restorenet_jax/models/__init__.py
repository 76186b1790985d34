"""The networks and what describes, stores and runs them.

`arch` (plain dataclasses: the one description of a network, stored as arch.json), `layers`, `baseline`,
`restorenet`, `danet`; `model_dir` (arch.json + an orbax params checkpoint, written atomically) and `predictor`
(the one jitted forward pass used by training's evaluation, `Restorer`, evaluate, restore and serve). Imports only
`configs` and third-party libraries.
"""
