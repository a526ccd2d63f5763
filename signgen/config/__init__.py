"""Strict, typed configuration (see schema.py for every key)."""

from signgen.config.load import (
    DEFAULT_CONFIG,
    config_hash,
    config_to_yaml,
    load_config,
    resolve_config_path,
)
from signgen.config.schema import SignGenConfig

__all__ = ["DEFAULT_CONFIG", "SignGenConfig", "config_hash", "config_to_yaml",
           "load_config", "resolve_config_path"]
