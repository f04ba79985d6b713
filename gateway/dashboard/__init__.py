"""The built-in admin dashboard: static HTML, JavaScript modules and CSS served at ``/dashboard``.

Everything it shows comes from the public API, called by the browser with the admin key the
user types in (see ``routes.py`` for how the files are served, ``static/`` for the code).
"""
