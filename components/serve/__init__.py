"""Serve stage: the serving app (``mlkeel serve``) and its infrastructure check before release."""
