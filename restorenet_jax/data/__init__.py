"""Data: TFDS builders for each dataset's on-disk layout, sources and mixing, the resumable grain pipeline,
degradations (noise, blur, the four input kinds), and the logic of the prepare_data and export_degraded commands.

May import `configs` and `models` (the DANet noise generator); never training, inference or the commands.
"""
