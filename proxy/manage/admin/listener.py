"""The admin HTTP listener a proxy process runs, if any: ``ProxyServer``'s ``admin`` factory.

``shardgate serve``, ``shardgate dev`` and the tests hand ``admin_listener`` to ``ProxyServer``
(the server does not import the management layer). It lives apart from
``proxy.manage.admin.server`` so that a proxy with neither ``[admin]`` nor ``[metrics]`` enabled
never imports the web stack (uvicorn, starlette, jinja2).
"""

from __future__ import annotations

from proxy.server import AdminListener, ServerContext


def admin_listener(ctx: ServerContext) -> AdminListener | None:
    """The dashboard with ``[admin] enabled = true``, ``GET /metrics`` with ``[metrics]
    enabled = true`` (alone if ``[admin]`` is off), on one listener; None with neither."""
    config = ctx.config
    if not (config.admin.enabled or config.metrics.enabled):
        return None
    from proxy.manage.admin.server import AdminServer

    return AdminServer(
        config.admin,
        ctx.accounts,
        ctx.catalog,
        ctx.secret,
        ctx.mirrors,
        lambda: ctx.config.server,
        ctx.bookkeeping,
        dashboard=config.admin.enabled,
        metrics=ctx.metrics if config.metrics.enabled else None,
        metrics_token=config.metrics.token(),
    )
