package org.iopreferrals.hapitest;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.event.EventListener;
import org.springframework.core.env.Environment;
import org.springframework.stereotype.Component;

/** One clear line when the server accepts requests (readiness itself is GET /fhir/metadata). */
@Component
public class ReadyLogger {
	private static final Logger LOG = LoggerFactory.getLogger(ReadyLogger.class);

	@EventListener(ApplicationReadyEvent.class)
	public void ready(ApplicationReadyEvent event) {
		Environment env = event.getApplicationContext().getEnvironment();
		LOG.info("HAPI FHIR test server ready at http://127.0.0.1:{}/fhir", env.getProperty("local.server.port"));
	}
}
