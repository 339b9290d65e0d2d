"""Booster Soccer Showdown building blocks (tasks, observation, scoring, walker, envs)."""
