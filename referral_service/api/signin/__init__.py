"""Dashboard sign-in through the organisation's OpenID Connect provider: authorization code with PKCE.

``routes`` serves ``/auth/login``, ``/auth/callback`` and ``/auth/logout``; ``session`` reads the session
cookie for the dashboard's pages (``access.authorize``) and checks their forms' CSRF token.
"""
