package org.iopreferrals.hapitest;

import java.util.Map;
import java.util.regex.Pattern;
import org.springframework.http.HttpStatus;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.server.ResponseStatusException;

/**
 * TEST ONLY: {@code POST /admin/refusals} with {@code {"CarePlan": 422, "Task": 403}} makes every write of those
 * resource types answer that status (400-599) with an OperationOutcome, until the next POST ({@code {}}: none);
 * {@code GET /admin/refusals} says what is refused now. {@code POST /admin/refusals/throttle} with
 * {@code {"status": 429, "retryAfterSeconds": 2, "writes": 3}} throttles the next 3 writes of any type (status 429
 * or 503, with that Retry-After); {@code GET} says how many are left. Outside /fhir, so FHIR clients never see it.
 */
@RestController
@RequestMapping("/admin/refusals")
public class RefusalAdmin {
	private static final Pattern RESOURCE_TYPE = Pattern.compile("[A-Z][A-Za-z]{1,63}");

	private final RefusalSwitch refusals;

	public RefusalAdmin(RefusalSwitch refusals) {
		this.refusals = refusals;
	}

	@GetMapping
	public Map<String, Integer> current() {
		return refusals.current();
	}

	public record Throttle(int status, int retryAfterSeconds, int writes) {}

	@GetMapping("/throttle")
	public Map<String, Integer> throttled() {
		return Map.of("writes", refusals.throttledWrites());
	}

	@PostMapping("/throttle")
	public Map<String, Integer> throttle(@RequestBody Throttle wanted) {
		if ((wanted.status() != 429 && wanted.status() != 503) || wanted.retryAfterSeconds() < 0 || wanted.writes() < 0) {
			throw new ResponseStatusException(
					HttpStatus.BAD_REQUEST, "expected {\"status\": 429 or 503, \"retryAfterSeconds\": n, \"writes\": n}");
		}
		refusals.throttle(wanted.status(), wanted.retryAfterSeconds(), wanted.writes());
		return throttled();
	}

	@PostMapping
	public Map<String, Integer> set(@RequestBody Map<String, Integer> wanted) {
		wanted.forEach((type, status) -> {
			if (!RESOURCE_TYPE.matcher(type).matches() || status == null || status < 400 || status > 599) {
				throw new ResponseStatusException(
						HttpStatus.BAD_REQUEST, "expected {\"ResourceType\": HTTP status 400-599, ...}");
			}
		});
		refusals.set(wanted);
		return refusals.current();
	}
}
