"""The explorer's views, one module per page.

To add a page, write ``explorer/pages/<name>.py`` with:
  NAME, PATH, ORDER        its nav-bar label, URL path and position in the nav bar
  layout(**query) -> Div   the page's components (ids prefixed with a short page prefix)
  register(app, services)  call ``dash.register_page(__name__, path=PATH, name=NAME,
                           order=ORDER, layout=layout)`` and define the page's callbacks
                           with ``app.callback`` (never ``dash.callback``: the app is
                           built by a factory, possibly more than once per process)
then add the module to ``PAGES`` below. The nav bar lists pages by ORDER. Pages that
show a path reuse ``explorer.pathview`` (URL hash <-> state, controls, background job);
figures come from ``explorer.figures`` (pure functions).
"""

from . import compare, model_card, organization, recall, signal_path, teaching, token_graph

PAGES = [signal_path, token_graph, recall, compare, teaching, model_card, organization]
