"""Model builders composed from nequip's modules, selected from the Hydra templates with ``_target_``."""
