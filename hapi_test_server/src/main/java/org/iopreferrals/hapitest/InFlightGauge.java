package org.iopreferrals.hapitest;

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * TEST ONLY: counts the FHIR requests this server is handling at once, so a test can see at the server that a
 * client kept within its limit. {@code GET /admin/load}: {@code {"inFlight": n, "peakInFlight": n, "requests": n}};
 * {@code POST /admin/load} starts counting afresh (the peak becomes what is in flight now).
 */
@Configuration
@RestController
@RequestMapping("/admin/load")
public class InFlightGauge {
	private final AtomicInteger inFlight = new AtomicInteger();
	private final AtomicInteger peak = new AtomicInteger();
	private final AtomicLong requests = new AtomicLong();

	@Bean
	public FilterRegistrationBean<Filter> inFlightFilter() {
		Filter counting = (ServletRequest request, ServletResponse response, FilterChain chain) -> count(request, response, chain);
		FilterRegistrationBean<Filter> registration = new FilterRegistrationBean<>(counting);
		registration.addUrlPatterns("/fhir/*");
		return registration;
	}

	private void count(ServletRequest request, ServletResponse response, FilterChain chain)
			throws IOException, ServletException {
		requests.incrementAndGet();
		peak.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
		try {
			chain.doFilter(request, response);
		} finally {
			inFlight.decrementAndGet();
		}
	}

	@GetMapping
	public Map<String, Long> current() {
		return Map.of("inFlight", (long) inFlight.get(), "peakInFlight", (long) peak.get(), "requests", requests.get());
	}

	@PostMapping
	public Map<String, Long> reset() {
		peak.set(inFlight.get());
		requests.set(0);
		return current();
	}
}
