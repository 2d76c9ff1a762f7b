"""Making gradients visible: how far back a gradient reaches in each cell, and what clipping does.

    gradflow    the norm of dL/ds_t for every step and the singular values of the step Jacobian
                ds_t/ds_{t-1}; ``rnnkit gradflow`` runs it from the command line (command.py)
    exploding   a recurrent weight scaled above 1: the gradient explodes; training with and without clipping
"""
from .exploding import ExplodingRun, exploding_demo
from .gradflow import CellFlow, fall_steps, gradient_flow, plot_flows, random_flow

__all__ = ["CellFlow", "gradient_flow", "random_flow", "fall_steps", "plot_flows", "ExplodingRun", "exploding_demo"]
