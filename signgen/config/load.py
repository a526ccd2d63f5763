"""Load a config: schema defaults <- YAML chain (``extends``) <- ``key=value`` overrides.

Strict throughout: an unknown key, a value of the wrong type, an out-of-range number or
an unresolvable interpolation raises ConfigError naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from signgen.config.schema import SignGenConfig
from signgen.errors import ConfigError
from signgen.paths import configs_dir

DEFAULT_CONFIG = "tiny"


def resolve_config_path(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """A bare name (``tiny``) means ``configs/tiny.yaml``; anything else is a path,
    taken relative to ``relative_to`` (the including file's folder) if not found as is."""
    text = str(name_or_path)
    if not text.endswith((".yaml", ".yml")) and "/" not in text:
        path = configs_dir() / f"{text}.yaml"
    else:
        path = Path(text)
        if not path.is_file() and relative_to is not None:
            path = relative_to / text
    if not path.is_file():
        known = sorted(p.stem for p in configs_dir().glob("*.yaml"))
        raise ConfigError(f"config {text!r} not found (looked for {path}); shipped configs: "
                          f"{', '.join(known)}")
    return path


def _read_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, DictConfig]]:
    """The YAML files from the most basic (first) to ``path`` (last)."""
    if path.resolve() in seen:
        raise ConfigError(f"config {path} extends itself (cycle: {[str(p) for p in seen]})")
    import yaml

    try:
        node = OmegaConf.load(path)
    except (OmegaConfBaseException, yaml.YAMLError, ValueError, OSError) as err:
        raise ConfigError(f"cannot read config {path}: {' '.join(str(err).split())}") from err
    if not isinstance(node, DictConfig):
        raise ConfigError(f"config {path} must be a mapping of sections, got a list or value")
    parent = node.get("extends")
    chain = [] if parent is None else _read_chain(
        resolve_config_path(parent, path.parent), (*seen, path.resolve()))
    return [*chain, (path, node)]


# YAML 1.1 reads these words as booleans, so ``mixed_precision=no`` would arrive as the
# string "False"; quoted they stay words (a boolean key still accepts them).
_YAML_BOOLEAN_WORDS = {"y", "yes", "n", "no", "on", "off"}


def _quote_boolean_words(override: str) -> str:
    key, value = override.split("=", 1)
    return f'{key}="{value}"' if value.lower() in _YAML_BOOLEAN_WORDS else override


def _error_text(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None)
    msg = str(getattr(err, "msg", err)).splitlines()[0]
    return f"{key}: {msg}" if key else msg


def _check_ranges(obj, prefix: str = "") -> None:
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_ranges(value, key + ".")
            continue
        meta = f.metadata
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{key}: {value!r} is not one of {list(meta['choices'])}")
        if "min" in meta and value < meta["min"]:
            raise ConfigError(f"{key}: {value} is below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            raise ConfigError(f"{key}: {value} is above the maximum {meta['max']}")
    # Sections may define check() for constraints that involve several keys.
    problems = obj.check() if hasattr(obj, "check") else []
    if problems:
        raise ConfigError(f"{prefix.rstrip('.')}: {problems[0]}")


def load_config(config: str | Path = DEFAULT_CONFIG,
                overrides: Sequence[str] = ()) -> SignGenConfig:
    """Load, merge, validate and resolve a config into a ``SignGenConfig`` instance.

    Args:
        config: a shipped config name (``tiny``, ``full``) or a YAML path.
        overrides: ``section.key=value`` strings applied last.
    """
    merged = OmegaConf.structured(SignGenConfig)
    for path, node in _read_chain(resolve_config_path(config)):
        try:
            merged = OmegaConf.merge(merged, node)
        except OmegaConfBaseException as err:
            raise ConfigError(f"{path}: {_error_text(err)}") from err
    bad = [o for o in overrides if "=" not in o or o.startswith("=")]
    if bad:
        raise ConfigError(f"overrides must look like section.key=value, got {bad}")
    try:
        merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(
            [_quote_boolean_words(o) for o in overrides]))
    except OmegaConfBaseException as err:
        raise ConfigError(f"override {_error_text(err)}") from err
    try:
        OmegaConf.resolve(merged)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(f"config {config}: {_error_text(err)}") from err
    _check_ranges(cfg)
    return cfg


def config_to_yaml(cfg: SignGenConfig) -> str:
    """The fully resolved config as YAML (what gets stored beside every artifact)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


# Where things are on one machine does not change what is trained: left out of the hash.
_MACHINE_LOCAL_KEYS = (("experiment", "output_dir"), ("data", "root"), ("body", "model_dir"))


def config_hash(cfg: SignGenConfig) -> str:
    """Short SHA-256 of the resolved config without machine-local paths (recorded in
    artifact metadata, so the same settings give the same hash on every machine)."""
    data = OmegaConf.to_container(OmegaConf.structured(cfg))
    for section, key in _MACHINE_LOCAL_KEYS:
        data[section].pop(key)
    return hashlib.sha256(OmegaConf.to_yaml(data).encode()).hexdigest()[:16]
