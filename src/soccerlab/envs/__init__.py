"""Environments: Gymnasium env factories and the soccer showdown envs."""
