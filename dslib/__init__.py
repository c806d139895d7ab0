"""dslib: a kit to learn, run and reproduce DeepSearch (arXiv 2509.25454).

Monte Carlo Tree Search inside the RL training loop of small reasoning models.
One module per idea; see DESIGN.md-style map in the README.
"""

__version__ = "0.1.0"
