import Testing
@testable import Tollgate

/// The access log's `auth` and `rate_limit` fields and the metrics' outcome labels are a documented vocabulary that
/// dashboards and log queries match on: each case renders to exactly the text it always had.
@Suite struct ObserveOutcomeTextTests {
    @Test func authResultsRenderTheirDocumentedNames() {
        let names = AuthResult.allCases.map(\.text)
        #expect(names == ["off", "-", "allowed", "denied", "missing", "malformed", "ambiguous", "throttled",
                          "overloaded", "unavailable", "public", "password-refused"])
        #expect(Set(names).count == names.count)
        #expect(AuthResult.allCases.filter { !$0.isCounted } == [.off, .notReached])
    }

    @Test func rateLimitResultsRenderKindAndWhoDecided() {
        #expect(RateLimitResult.off.text == "off")
        #expect(RateLimitResult.notReached.text == "-")
        #expect(RateLimitResult(.pass).text == "pass")
        #expect(RateLimitResult(.exempt).text == "exempt")
        #expect(RateLimitResult(.dryRun).text == "dry-run")
        #expect(RateLimitResult(.rejected).text == "rejected")
        #expect(RateLimitResult(.pass, source: .redis).text == "pass:redis")
        #expect(RateLimitResult(.rejected, source: .cache).text == "rejected:cache")
        #expect(RateLimitResult(.dryRun, source: .local).text == "dry-run:local")
        #expect(RateLimitResult(.pass, source: .open).text == "pass:open")
        #expect(RateLimitResult(.unavailable, source: .closed).text == "unavailable:closed")
    }

    @Test func upstreamFailuresComeOnlyFromUpstreamReasons() {
        let failures = [CloseReason.upstreamRefused, .upstreamTimeout, .upstreamClosed, .upstreamInvalid].compactMap(UpstreamFailure.init)
        #expect(failures.map(\.text) == ["refused", "timeout", "closed", "invalid"])
        #expect(UpstreamFailure(.completed) == nil)
        #expect(UpstreamFailure(.clientAborted) == nil)
    }
}
