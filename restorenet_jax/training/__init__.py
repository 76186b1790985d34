"""Training: the loop (`loop.train_and_evaluate`), one stage of it (`stage.run_stage`), the pure step (`step`),
optimiser and freezing (`optim`), devices and processes (`sharding`), checkpoints and the workdir layout
(`checkpoints`), where initial parameters come from incl. backbone pre-training (`initialization`), losses and
metric writing.

May import `configs`, `models`, `data` and `evaluation`; never inference or the commands.
"""
