"""BriLLM Explorer: the Dash app over brillm_core (``explorer.app.create_app``, ``brillm explore``)."""
