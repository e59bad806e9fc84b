"""Serving the explorer to a room: a kernel manager with a cap on live kernels (for Voila).

Every page visit starts a kernel (about 1 GB with torch loaded); by default Voila keeps it until the
server stops. ``CappedKernelManager`` keeps at most ``max_kernels``: when a visit needs a kernel and the cap
is reached, the kernels whose pages were closed (their last connection dropped, now idle) go first, oldest
first — and those that never connected once idle for ``grace`` seconds (a page still rendering is busy or
recent); if every kernel is in use, the visit gets HTTP 503 with a message. Idle culling
(``--MappingKernelManager.cull_idle_timeout``) still frees kernels of abandoned pages over time.
``make app`` starts Voila with both (see the README's "Workshops" notes). On start it removes the upload
folders that sessions of an earlier run left under the data root (``DataRoot.sweep_uploads``).
"""
from __future__ import annotations

import os
from datetime import timedelta

from jupyter_server._tz import utcnow
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Float, Integer

__all__ = ["CappedKernelManager"]


class CappedKernelManager(AsyncMappingKernelManager):
    """``AsyncMappingKernelManager`` with at most ``max_kernels`` kernels alive."""

    max_kernels = Integer(8, config=True, help="the most kernels (page visits) alive at once")
    grace = Float(60.0, config=True, help="seconds an idle kernel that never had a connection is kept")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # kernels share the cores: OpenMP threads that spin while they wait made a busy room's pictures 16×
        # slower (issue 44); passive waiting costs ~10 % on a quiet machine. The operator's own choice is kept.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self._closed_at: dict = {}  # kernel id → when its last connection dropped
        if os.environ.get("NNRULES_DATA"):  # uploads of kernels from an earlier server run (killed, culled)
            from .state.files import DataRoot

            removed = DataRoot().sweep_uploads()
            if removed:
                self.log.info("Removed %d upload folders of sessions that are gone", len(removed))

    def notify_connect(self, kernel_id) -> None:
        super().notify_connect(kernel_id)
        self._closed_at.pop(kernel_id, None)

    def notify_disconnect(self, kernel_id) -> None:
        super().notify_disconnect(kernel_id)
        if self._kernel_connections.get(kernel_id, 1) == 0:
            self._closed_at[kernel_id] = utcnow()

    def _replaceable(self) -> list[str]:
        """Kernels whose page is gone, oldest first (see the module docstring)."""
        now, out = utcnow(), []
        for kid in self.list_kernel_ids():
            k = self.get_kernel(kid)
            if self._kernel_connections.get(kid, 0) or getattr(k, "execution_state", "") == "busy":
                continue
            closed = self._closed_at.get(kid)
            last = getattr(k, "last_activity", now)
            if closed is not None or now - last >= timedelta(seconds=self.grace):
                out.append((closed or last, kid))
        return [kid for _, kid in sorted(out)]

    async def shutdown_kernel(self, kernel_id, now=False, restart=False):
        self._closed_at.pop(kernel_id, None)
        return await super().shutdown_kernel(kernel_id, now=now, restart=restart)

    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):
        if kernel_id is None or kernel_id not in self:
            for kid in self._replaceable():
                if len(self.list_kernel_ids()) < self.max_kernels:
                    break
                self.log.info("Kernel cap %d reached: shutting down kernel %s of a closed page",
                              self.max_kernels, kid)
                await self.shutdown_kernel(kid)
            if len(self.list_kernel_ids()) >= self.max_kernels:
                raise web.HTTPError(503, reason=f"The explorer is serving as many pages as it may "
                                                f"({self.max_kernels}); a place frees up when a page is closed")
        return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
