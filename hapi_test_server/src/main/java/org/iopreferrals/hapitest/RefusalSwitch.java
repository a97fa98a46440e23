package org.iopreferrals.hapitest;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.BaseServerResponseException;
import org.hl7.fhir.instance.model.api.IBaseResource;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.hl7.fhir.r4.model.OperationOutcome;
import org.hl7.fhir.r4.model.StringType;
import org.springframework.stereotype.Component;

/**
 * TEST ONLY: a fault switch that makes this server refuse every write of chosen resource types with a chosen
 * HTTP status and a real OperationOutcome, as a production EHR refuses writes it will not take (validation,
 * permissions, unknown references). Off by default (nothing is refused); set through {@link RefusalAdmin}.
 * It can also throttle: the next N writes (any type) answer 429 or 503 with a Retry-After header, as an EHR or
 * its gateway answers a client that calls too fast, and are not written (a transaction is not throttled: tests
 * seed their referrals with one). A resource of a refused type inside a transaction fails the whole transaction
 * with the refusal's status, as a real EHR's transaction is all or nothing.
 */
@Component
@Interceptor
public class RefusalSwitch {
	private static final Set<RestOperationTypeEnum> WRITES =
			Set.of(RestOperationTypeEnum.CREATE, RestOperationTypeEnum.UPDATE, RestOperationTypeEnum.PATCH);

	private final Map<String, Integer> refusals = new ConcurrentHashMap<>();
	private final AtomicInteger throttledWrites = new AtomicInteger();
	private volatile int throttleStatus = 429;
	private volatile int retryAfterSeconds = 1;

	/** Resource type to HTTP status: what is refused now. */
	public Map<String, Integer> current() {
		return new TreeMap<>(refusals);
	}

	/** Replace every refusal (an empty map turns the switch off). */
	public synchronized void set(Map<String, Integer> wanted) {
		refusals.clear();
		refusals.putAll(wanted);
	}

	/** The next {@code writes} writes answer {@code status} with {@code Retry-After: retryAfter}. */
	public synchronized void throttle(int status, int retryAfter, int writes) {
		throttleStatus = status;
		retryAfterSeconds = retryAfter;
		throttledWrites.set(writes);
	}

	/** How many writes are still to be throttled. */
	public int throttledWrites() {
		return throttledWrites.get();
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED)
	public void refuseWrites(RequestDetails request, RestOperationTypeEnum operation) {
		String type = request.getResourceName();
		if (WRITES.contains(operation) && throttledWrites.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
			String text = "Throttled by the HAPI test server's fault switch (test only): retry after "
					+ retryAfterSeconds + " s";
			BaseServerResponseException throttled = BaseServerResponseException.newInstance(throttleStatus, text);
			throttled.addResponseHeader("Retry-After", Integer.toString(retryAfterSeconds));
			throw throttled;
		}
		Integer status = type == null || !WRITES.contains(operation) ? null : refusals.get(type);
		if (status != null) {
			throw refusal(type, status);
		}
	}

	/** A resource of a refused type about to be stored: inside a transaction, the request named no type above. */
	@Hook(Pointcut.STORAGE_PRESTORAGE_RESOURCE_CREATED)
	public void refuseCreated(IBaseResource resource) {
		refuseStoring(resource);
	}

	@Hook(Pointcut.STORAGE_PRESTORAGE_RESOURCE_UPDATED)
	public void refuseUpdated(IBaseResource oldResource, IBaseResource newResource) {
		refuseStoring(newResource);
	}

	private void refuseStoring(IBaseResource resource) {
		String type = resource.fhirType();
		Integer status = refusals.get(type);
		if (status != null) {
			throw refusal(type, status);
		}
	}

	private static BaseServerResponseException refusal(String type, int status) {
		String text = "Refused by the HAPI test server's fault switch (test only): " + type + " writes answer " + status;
		OperationOutcome outcome = new OperationOutcome();
		OperationOutcome.OperationOutcomeIssueComponent issue = outcome.addIssue()
				.setSeverity(OperationOutcome.IssueSeverity.ERROR)
				.setCode(issueType(status))
				.setDiagnostics(text);
		issue.getExpression().add(new StringType(type));
		BaseServerResponseException refusal = BaseServerResponseException.newInstance(status, text);
		refusal.setOperationOutcome(outcome);
		return refusal;
	}

	private static OperationOutcome.IssueType issueType(int status) {
		return switch (status) {
			case 400 -> OperationOutcome.IssueType.INVALID;
			case 401, 403 -> OperationOutcome.IssueType.FORBIDDEN;
			case 404 -> OperationOutcome.IssueType.NOTFOUND;
			case 409, 412 -> OperationOutcome.IssueType.CONFLICT;
			case 422 -> OperationOutcome.IssueType.PROCESSING;
			default -> OperationOutcome.IssueType.EXCEPTION;
		};
	}
}
