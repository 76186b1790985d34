"""Built-in default configurations: the training default, data and degradation settings, the benchmark suite.

Plain `ml_collections.ConfigDict` factories with every field commented; they import nothing from the rest of the
package (the lowest layer). The repository's `configs/` folder holds the experiment files that build on these
(`--config configs/bsd64.py`); the library itself only ever imports this package.
"""
