"""The clinician ROI editor: a local web page to inspect samples and adjust the TMA attention (``allpet view``).

:mod:`.session` holds everything the page computes (no web code), :mod:`.server`
the Flask app, ``page.html`` (with ``page.js`` and ``page.css``) the page itself; the attention it shows is
:func:`tasks.attention_inputs.attention_for`.
"""

from tasks.attention_inputs import attention_for

from .session import ViewerError, ViewerSession

__all__ = ["ViewerError", "ViewerSession", "attention_for"]
