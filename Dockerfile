# The service image (API and worker share it; the command picks the role).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY referral_service ./referral_service
COPY workflows ./workflows
COPY fhir_mappings ./fhir_mappings
RUN pip install --no-cache-dir .
# The API's audit trail (README, Audit trail): a volume mounted here starts out writable by the service's user.
RUN mkdir -p /var/lib/iop-audit && chown nobody /var/lib/iop-audit
USER nobody
ENTRYPOINT ["referral-service"]
