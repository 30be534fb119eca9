"""The local HTTP robot of ``benchmarks.servers``, for the analytics tests."""

from benchmarks.servers import Robot, robot_server

__all__ = ["Robot", "robot_server"]
