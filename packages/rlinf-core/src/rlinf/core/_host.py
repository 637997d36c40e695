"""The Ray actor that hosts one Worker instance and reports its failures as data."""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from ._worker import Worker, WorkerContext

__all__ = ["WorkerHost"]


class WorkerHost:
    """Constructs the user's Worker in ``start`` and runs its methods in ``call``.

    Results come back as ``("ok", value)`` or ``("err", type, message, traceback)`` so the
    driver can name the group, rank and remote traceback without parsing Ray's wrappers.
    """

    def __init__(self, worker_cls: type[Worker], ctx: WorkerContext):
        # Unpickling worker_cls here imports its module (torch, simulators, ...): the
        # process warms up while the driver still prepares the constructor's arguments.
        self._cls = worker_cls
        self._ctx = ctx
        self._worker: Worker | None = None
        # The class's own warm-up (imports its first step needs) also runs now; a failure
        # is kept for start(), where the driver reports it as this rank's __init__ error.
        self._warm_up_error: tuple | None = None
        try:
            worker_cls.warm_up()
        except Exception as e:
            self._warm_up_error = ("err", type(e).__name__, str(e), traceback.format_exc())

    def start(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple:
        if self._warm_up_error is not None:
            return self._warm_up_error
        try:
            worker = self._cls.__new__(self._cls)
            worker._attach(self._ctx)
            worker.__init__(*args, **kwargs)
            self._worker = worker
            return ("ok", None)
        except Exception as e:
            return ("err", type(e).__name__, str(e), traceback.format_exc())

    def call(self, method: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple:
        try:
            result = getattr(self._worker, method)(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            return ("ok", result)
        except Exception as e:
            return ("err", type(e).__name__, str(e), traceback.format_exc())
