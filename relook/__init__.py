"""relook: a Jupyter-first reproducibility kit for ReLook (arXiv 2510.11498).

One module per mechanism: render, tasks, critic, reward, rollout, policy, train, infer, evaluate, viz,
config, cli. Importing the package is cheap; torch loads only with the modules that need it.
"""
__version__ = "0.1.0"
