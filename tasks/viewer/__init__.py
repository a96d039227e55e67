"""The clinician ROI editor: a local web page to inspect samples and adjust the TMA attention (``allpet view``).

:mod:`.session` holds everything the page computes (no web code), :mod:`.server`
the Flask app, ``page.html`` the page itself.
"""

from .session import ViewerError, ViewerSession, attention_for

__all__ = ["ViewerError", "ViewerSession", "attention_for"]
