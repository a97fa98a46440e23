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
 * {@code GET /admin/refusals} says what is refused now. Outside /fhir, so FHIR clients never see it.
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
