"""What the report's steps share: the configuration, the runs, the output folders, each step's results."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from bayes_scaling.report.config import ReportConfig

log = logging.getLogger(__name__)

class _Build:
    """What the report's steps share: the configuration, the runs, the folders and each step's results."""

    def __init__(self, config: ReportConfig, runs, root: Path, target: Path, config_path: str | None):
        self.config, self.runs, self.root, self.target, self.config_path = config, runs, root, target, config_path
        self.laws = [config.law, *(law for law in config.compare_laws if law != config.law)]
        self.figures, self.tables = root / "figures", root / "tables"
        self.figures.mkdir()
        self.tables.mkdir()
        self.times: dict[str, float] = {}
        self._clock = time.perf_counter()
        self.settings = {"draws": config.draws, "tune": config.tune, "chains": config.chains, "seed": config.seed,
                         "pooling": config.pooling}

    def step(self, i: int, text: str) -> None:
        log.info("[%d/%d] %s", i, STEPS, text)

    def tick(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._clock, 2)
        self._clock = now

    def table(self, frame: pd.DataFrame, name: str, caption: str, *, index: bool = False) -> None:
        from bayes_scaling.io.tables import write_table

        write_table(frame, self.tables / name, index=index, caption=caption)


#: The report's steps, as its progress counts them.
STEPS = 8

