"""HTTP entry points: the FHIR intake endpoint, the case-manager API and the dashboard."""
