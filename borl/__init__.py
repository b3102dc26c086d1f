"""borl: batch online reinforcement learning for robot manipulation."""

__version__ = "0.1.0"
