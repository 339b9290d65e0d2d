"""soccerlab: train, evaluate, record and export RL agents from one YAML experiment file."""

__version__ = "0.1.0"
