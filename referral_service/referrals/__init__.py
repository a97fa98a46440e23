"""The referral service: what every surface (FHIR API, case-manager API, dashboard, CLI) does to a referral's
workflow — read it, drive it, cancel it, find it — raising ``errors.ReferralError``s each surface answers in its
own form. Starting one is ``referral_service.intake``'s ``take_in``."""
