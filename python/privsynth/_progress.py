"""Progress of the pipeline's steps: a tqdm bar (in a notebook or a terminal) when tqdm is
installed, otherwise one line on stderr per step. Step names never carry data."""

import sys
import threading
import time
from typing import Any, Optional


def _tqdm() -> Any:
    """tqdm's bar where one can be drawn (a notebook, or stderr on a terminal), else None: in
    a log file a redrawn bar is noise, one line per step is not."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    in_notebook = "ipykernel" in sys.modules
    if in_notebook or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return tqdm
    return None


class Progress:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._stop: Optional[threading.Event] = None
        self._started = 0.0
        self._step = ""

    def begin(self, step: str) -> None:
        if not self.enabled:
            return
        self._started = time.monotonic()
        self._step = step
        tqdm = _tqdm()
        if tqdm is None:
            print("privsynth: %s ..." % step, file=sys.stderr, flush=True)
            return
        # No total: the bar shows the step and the elapsed time, refreshed by a thread while
        # the native code works without the GIL.
        self._bar = tqdm(total=None, desc="privsynth: " + step, bar_format="{desc} [{elapsed}]", leave=False)
        stop = threading.Event()
        self._stop = stop
        bar = self._bar

        def tick() -> None:
            while not stop.wait(0.5):
                bar.refresh()

        threading.Thread(target=tick, daemon=True).start()

    def end(self) -> None:
        if not self.enabled:
            return
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            print(
                "privsynth: %s done in %.1f s" % (self._step, time.monotonic() - self._started),
                file=sys.stderr,
                flush=True,
            )
