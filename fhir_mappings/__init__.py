"""Pure functions between FHIR R4 (fhir.resources.R4B) and the referral domain. See README.md."""
