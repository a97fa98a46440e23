"""Temporal, as this service uses it: the connection (``connection``), the namespace's search attributes
(``search_attribute_setup``), secrets derived from the payload key ring (``key_ring_secrets``) and the EHR polling
schedules (``poll_schedules``)."""
