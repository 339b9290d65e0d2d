"""Environments: the soccer tasks (``soccerlab.envs.soccer``) and, later, the generic factory."""
