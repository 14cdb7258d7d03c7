"""The opening every page callback shares, in one place: the language, the session, the API's refusal.

A callback reads the chosen language from the `lang` store (empty until the browser has stored
a choice: Chinese), does nothing until someone is logged in, and shows the API's error where the
page's figures would be. `page_callback` does all three for the callback it decorates:

    @callback(Output("equity-table", "children"), Output("equity-error", "children"),
              Input("url", "search"), Input("lang", "data"), State("session", "data"))
    @page_callback("equity-error-message", lambda box, **_: ([], box))
    def refresh(search, lang, session):
        ...  # lang is "zh" or "en", session is set; an ApiError raised here shows as `box`

The callback's arguments are found by name: `lang` arrives normalised, a callback with a
`session` argument is not run without one (PreventUpdate) unless `needs_session=False`, and
while a callback with a `search` argument (the URL's query) runs, every cockpit URL it builds
keeps that URL's period and figure (`dashboard.scope.keeping`).
"""

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import dash

from dashboard import api_client
from dashboard.components import error_box
from dashboard.i18n import language
from dashboard.scope import keeping

log = logging.getLogger(__name__)


def page_callback(error_id: str | None = None, on_error: Callable[..., Any] | None = None, *,
                  needs_session: bool = True, back: bool = True) -> Callable:
    """Decorate a Dash callback (below `@callback`) with the pages' common opening.

    With `error_id` and `on_error`, an `api_client.ApiError` raised by the callback becomes its
    standard error output: `on_error(box, **arguments)`, where `box` is the API's message as
    `error_box(exc, error_id, lang)` (in words, with a link back to the overview) and
    `arguments` are the callback's own (lang normalised), returns all of the callback's
    outputs. Any other exception is logged and shown the same way, as "this page could not be
    drawn", rather than leaving the page blank. `back=False` leaves out the link back to the
    overview (for a message inside a form or a download, not in place of a page).
    """
    if (error_id is None) != (on_error is None):
        raise TypeError("page_callback: error_id and on_error go together")

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func)
        guarded = needs_session and "session" in signature.parameters

        @functools.wraps(func)
        def run(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            with keeping(bound.arguments.get("search")):
                return opened(bound)

        def opened(bound: inspect.BoundArguments):
            lang = language(bound.arguments.get("lang"))
            if "lang" in signature.parameters:
                bound.arguments["lang"] = lang
            if guarded and not bound.arguments.get("session"):
                raise dash.exceptions.PreventUpdate
            if on_error is None:
                return func(*bound.args, **bound.kwargs)
            try:
                return func(*bound.args, **bound.kwargs)
            except dash.exceptions.PreventUpdate:
                raise
            except api_client.ApiError as exc:
                return on_error(error_box(exc, error_id, lang, back), **bound.arguments)
            except Exception as exc:  # a page that cannot be drawn says so in words, not with a blank
                log.exception("%s failed", func.__qualname__)
                return on_error(error_box(exc, error_id, lang, back), **bound.arguments)

        return run

    return decorate

