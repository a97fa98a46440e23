"""Every form that changes something carries the session's CSRF field: a form without it works in development
mode and behind a proxy, and is refused only once staff sign in with a session cookie (too late to find out)."""

import re
from pathlib import Path

import referral_service.api.dashboard as dashboard
import referral_service.api.signin as signin

TEMPLATES = [
    *Path(dashboard.__file__).parent.glob("templates/*.html"),
    *Path(signin.__file__).parent.glob("templates/*.html"),
]
POST_FORM = re.compile(r"<form\b[^>]*\bmethod=\"post\"[^>]*>(.*?)</form>", re.S | re.I)


def test_every_post_form_in_the_dashboard_carries_the_csrf_field():
    forms = [(path.name, body) for path in TEMPLATES for body in POST_FORM.findall(path.read_text())]
    assert len(forms) >= 8, "the dashboard's POST forms were not found"
    assert [name for name, body in forms if "{{ csrf_field }}" not in body] == []
