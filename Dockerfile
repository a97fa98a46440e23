# The service image (API and worker share it; the command picks the role).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY referral_service ./referral_service
COPY workflows ./workflows
COPY fhir_mappings ./fhir_mappings
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["referral-service"]
