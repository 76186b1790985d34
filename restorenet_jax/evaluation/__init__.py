"""Evaluation: image-quality metrics with BasicSR conventions (`metrics`) and scoring of restored examples per
dataset, input kind and method (`scoring`). Used by training's periodic evaluation and by the evaluate command.

May import `configs`, `models` and `data`; never training, inference or the commands.
"""
