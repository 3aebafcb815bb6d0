"""The per-iteration callback: an optional tqdm progress bar."""

from __future__ import annotations

import warnings


class Progress:
    """Context manager whose `update` is handed to the engine as its
    per-iteration callback. Without tqdm installed it warns once and does
    nothing."""

    def __init__(self, enabled: bool, total: int, desc: str):
        self._bar = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warnings.warn("progress=True needs tqdm (pip install tqdm); continuing without",
                          RuntimeWarning, stacklevel=4)
            return
        self._bar = tqdm(total=total, desc=desc, unit="it")

    def update(self, redo: int, iteration: int, stats: dict) -> None:
        self._bar.set_postfix(obj=f"{stats['obj']:.6g}", refresh=False)
        self._bar.update(1)

    @property
    def callback(self):
        return self.update if self._bar is not None else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
