"""Scenario replay: realistic referral stories run through the real workflow against a FHIR server.

``scenario`` (the file format), ``seeding`` (the referral in the EHR), ``runner`` (the timeline on a
time-skipping Temporal server), ``checks`` (expectations, by searching the EHR), ``report``, ``command``.
"""
