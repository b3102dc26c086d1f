"""Evaluation statistics and figures."""
