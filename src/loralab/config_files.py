"""Config files and ``--set``: the layers between the defaults and the flags.

A job's settings are layered, each layer overriding the one before::

    TrainConfig's defaults  <  a config file (--config)  <  --set key=value  <  flags

A config file is YAML (``.yaml``/``.yml``) or JSON. Besides training settings it may name the
job itself — ``data``, ``text_col``, ``label_col``, ``subset``, ``output_dir`` (the fields of
:class:`JobConfig`) — so one file describes a whole run and ``DATA`` on the command line
becomes optional. A relative ``data`` path in a file is read from the file's folder, so a job
file can sit next to its data. Values are type-checked: ``lr: fast`` is refused with one
sentence naming the file, the key, the value and the type expected. A run's own
``config.json`` is a valid config file, which reruns it.

>>> settings, job = layer_settings(None, ["lora_rank=4"], {"lr": 1e-3})
>>> settings, job.text_col
({'lora_rank': 4, 'lr': 0.001}, 'text')
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from loralab.config import CONFIG_VERSION, TrainConfig, check_value, parse_value, setting
from loralab.errors import LoralabError, closest

DATA_HELP = (
    "CSV/TSV/JSON/JSONL/Parquet file, folder of train/validation/test files, hf:NAME[:CONFIG] or demo."
)


@dataclass
class JobConfig:
    """What a job reads and where it writes, besides how it trains."""

    data: str | None = setting(None, DATA_HELP)
    text_col: str = setting("text", "Column holding the texts.")
    label_col: str = setting("label", "Column holding the class names.")
    subset: int | None = setting(None, "Stratified subset of at most N rows per split.")
    output_dir: str | None = setting(None, "Folder the job writes into.")

    def __post_init__(self) -> None:
        if self.subset is not None and self.subset < 1:
            raise LoralabError(f"--subset must be ≥ 1, got {self.subset}.")

    def require_data(self) -> str:
        if not self.data:
            raise LoralabError("Give DATA on the command line, or name it in the --config file (data: …).")
        return self.data


TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))
J = TypeVar("J", bound=JobConfig)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML or JSON file (by suffix; other suffixes are read as YAML, which
    also reads JSON)."""
    path = Path(path)
    if not path.is_file():
        raise LoralabError(f"{path}: no such config file.")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise LoralabError(f"{path}: not valid JSON (line {err.lineno}: {err.msg}).") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err)
            raise LoralabError(f"{path}: not valid YAML ({where}{problem}).") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LoralabError(
            f"{path}: a config file holds settings as key: value pairs, not a {type(data).__name__}."
        )
    return data


def _typed(key: str, value: Any, as_text: bool, job_class: type[JobConfig]) -> tuple[str, Any]:
    """(``"train"`` or ``"job"``, the checked value) for one key of a file or ``--set``."""
    job_keys = tuple(f.name for f in dataclasses.fields(job_class))
    for kind, cls, keys in (("train", TrainConfig, TRAIN_KEYS), ("job", job_class, job_keys)):
        if key in keys:
            return kind, parse_value(cls, key, value) if as_text else check_value(cls, key, value)
    known = sorted(TRAIN_KEYS + job_keys)
    raise LoralabError(f"unknown setting '{key}'{closest(key, known)}; the settings are {', '.join(known)}.")


def _run_data_settings(config_file: Path) -> dict[str, Any]:
    """For a run's own ``config.json`` (a ``manifest.json`` beside it): the columns and subset
    the run read its data with, which live in the manifest, so that ``--config RUN/config.json``
    trains the same run again on the same DATA."""
    manifest_path = config_file.parent / "manifest.json"
    if config_file.name != "config.json" or not manifest_path.is_file():
        return {}
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return {}
    columns = manifest.get("columns") if isinstance(manifest, dict) else None
    found: dict[str, Any] = {}
    if isinstance(columns, dict):
        found.update(
            {f"{k}_col": v for k, v in columns.items() if k in ("text", "label") and isinstance(v, str)}
        )
    if isinstance(manifest, dict) and isinstance(manifest.get("subset"), int):
        found["subset"] = manifest["subset"]
    return found


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["lora_rank=4", "lr=1e-3"]`` → ``{"lora_rank": "4", "lr": "1e-3"}`` (still text)."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LoralabError(f"--set takes key=value, got '{item}'.")
        pairs[key.strip().replace("-", "_")] = value.strip()
    return pairs


def layer_settings(
    config_file: str | Path | None,
    assignments: list[str] | None,
    flags: dict[str, Any],
    job_class: type[J] = JobConfig,  # type: ignore[assignment]
) -> tuple[dict[str, Any], J]:
    """Training settings (only those given somewhere; the rest keep TrainConfig's defaults)
    and the job, layered as file < ``--set`` < ``flags``. Flags left as ``None`` were not
    given and do not override. A command whose files may name more (compare's ``methods``)
    passes a subclass of :class:`JobConfig` as ``job_class``."""
    job_keys = tuple(f.name for f in dataclasses.fields(job_class))
    train: dict[str, Any] = {}
    job: dict[str, Any] = {}
    if config_file is not None:
        for key, value in read_config_file(config_file).items():
            if key == "config_version":
                if value != CONFIG_VERSION:
                    raise LoralabError(
                        f"{config_file}: config_version {value!r} is not one this loralab reads "
                        f"({CONFIG_VERSION})."
                    )
                continue
            try:
                kind, checked = _typed(str(key), value, False, job_class)
            except LoralabError as err:
                raise LoralabError(f"{config_file}: {err}") from None
            (train if kind == "train" else job)[key] = checked
        for key, value in _run_data_settings(Path(config_file)).items():
            job.setdefault(key, value)
        data = job.get("data")
        if isinstance(data, str) and data != "demo" and not data.startswith("hf:"):
            job["data"] = str(Path(config_file).parent / Path(data).expanduser())
    for key, text in parse_assignments(assignments or []).items():
        try:
            kind, checked = _typed(key, text, True, job_class)
        except LoralabError as err:
            raise LoralabError(f"--set {err}") from None
        (train if kind == "train" else job)[key] = checked
    for key, value in flags.items():
        if value is not None:
            (job if key in job_keys else train)[key] = value
    return train, job_class(**job)
