"""Collecting episodes: batched lockstep environments over worker processes, OU noise."""
