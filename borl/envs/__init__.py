"""Tasks, their environments and scripted experts, and demonstration collection."""

from borl.envs.registry import Task, get_task, list_tasks

__all__ = ["Task", "get_task", "list_tasks"]
