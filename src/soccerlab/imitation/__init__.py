"""Imitation: scripted experts, demonstration datasets, behaviour cloning."""
