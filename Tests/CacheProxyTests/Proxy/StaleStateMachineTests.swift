import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

/// `stale_while_revalidate` and `stale_if_error` as transitions of ``ProxyStateMachine``.
@Suite struct StaleStateMachineTests {
    /// `/c`: TTL 30 s, stale_while_revalidate 10 s; `/e`: stale_if_error 60 s only.
    static let settings = ProxyStateMachineTests.settings(
        routes: """
              - path: /c
                stale_while_revalidate: 10s
              - path: /e
                stale_if_error: 60s
            """)
    static let storedAt: Int64 = 1_000_000
    static func entry(_ path: String) -> CacheEntry {
        CacheEntry(
            status: 200, headers: [("content-type", "text/plain")], body: ByteBuffer(string: "cached"), storedAt: storedAt, ttl: 30_000,
            grace: 60_000)
    }

    static func lookingUp(_ path: String) -> ProxyStateMachine {
        var m = ProxyStateMachineTests.machine(settings)
        _ = m.requestHead(ProxyStateMachineTests.head("GET \(path) HTTP/1.1\r\nHost: h\r\n\r\n"))
        _ = m.requestEnd()
        return m
    }

    @Test func insideTheRevalidateWindowTheStaleEntryIsServedAndOneRefreshAsked() {
        var m = Self.lookingUp("/c")
        let actions = m.lookupCompleted(request: 1, .stale(Self.entry("/c"), pastTTL: 4_000), generation: 7, now: Self.storedAt + 34_000)
        #expect(
            describe(actions) == [
                "refresh /c", "writeHead 200 STALE revalidating age=34", "writeBody 6", "log GET /c 200 STALE", "writeEnd keep-alive",
                "setTimer client",
            ])
        guard case .refresh(let job) = actions[0] else { return }
        #expect(job.generation == 7)
        #expect(job.route.name == "/c")
        #expect(m.isIdle)
    }

    @Test func aSoftPurgedEntryWithinItsTTLIsServedStaleToo() {
        var m = Self.lookingUp("/c")
        var entry = Self.entry("/c")
        entry.invalidated = true
        let lookup = CacheLookup.classify(entry, now: Self.storedAt + 1_000)
        #expect(
            describe(m.lookupCompleted(request: 1, lookup, now: Self.storedAt + 1_000)).prefix(2) == [
                "refresh /c", "writeHead 200 STALE revalidating age=1",
            ])
    }

    @Test func pastTheRevalidateWindowItIsRefetched() {
        var m = Self.lookingUp("/c")
        #expect(
            describe(m.lookupCompleted(request: 1, .stale(Self.entry("/c"), pastTTL: 10_001), now: Self.storedAt + 40_001)) == [
                "setTimer upstream", "acquireUpstream",
            ])
    }

    @Test func anOriginErrorStatusServesTheStaleEntryAndDropsTheError() {
        var m = Self.lookingUp("/e")
        _ = m.lookupCompleted(request: 1, .stale(Self.entry("/e"), pastTTL: 5_000), now: Self.storedAt + 35_000)
        _ = m.upstreamAcquired(reused: false)
        #expect(
            describe(m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .serviceUnavailable), now: Self.storedAt + 36_000)) == [
                "setTimer upstream", "closeUpstream", "cancelTimer upstream", "writeHead 200 STALE fwd-status=503 age=36", "writeBody 6",
                "log GET /e 200 STALE", "writeEnd keep-alive", "setTimer client",
            ])
        // The rest of the error's body is ignored.
        #expect(describe(m.upstreamBody(ByteBuffer(string: "error"))) == [])
        #expect(m.isIdle)
    }

    @Test func anOriginThatCannotBeReachedServesTheStaleEntry() {
        var m = Self.lookingUp("/e")
        _ = m.lookupCompleted(request: 1, .stale(Self.entry("/e"), pastTTL: 5_000), now: Self.storedAt + 35_000)
        let actions = m.upstreamAcquireFailed(UpstreamError(code: .connectFailed, detail: "refused"), now: Self.storedAt + 35_000)
        #expect(describe(actions).contains("writeHead 200 STALE origin-down age=35"))
        #expect(!describe(actions).contains { $0.hasPrefix("warn upstream") })
    }

    @Test func anOriginTimeoutOrCloseServesTheStaleEntry() {
        var m = Self.lookingUp("/e")
        var actions = m.lookupCompleted(request: 1, .stale(Self.entry("/e"), pastTTL: 5_000), now: Self.storedAt + 35_000)
        guard case .setTimer(.upstream, let id, _) = actions[0] else {
            Issue.record("no upstream timer")
            return
        }
        _ = m.upstreamAcquired(reused: false)
        actions = m.timerFired(.upstream, id: id, now: Self.storedAt + 65_000)
        #expect(describe(actions).contains("writeHead 200 STALE origin-down age=65"))
        #expect(describe(actions).first == "closeUpstream")

        var closed = Self.lookingUp("/e")
        _ = closed.lookupCompleted(request: 1, .stale(Self.entry("/e"), pastTTL: 5_000), now: Self.storedAt + 35_000)
        _ = closed.upstreamAcquired(reused: false)
        _ = closed.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok), now: Self.storedAt + 35_100)
        actions = closed.upstreamFailed(UpstreamError.closed, now: Self.storedAt + 35_200)
        #expect(describe(actions).contains("writeHead 200 STALE origin-down age=35"))
    }

    @Test func pastTheErrorWindowTheErrorIsAnswered() {
        var m = Self.lookingUp("/e")
        _ = m.lookupCompleted(request: 1, .stale(Self.entry("/e"), pastTTL: 60_001), now: Self.storedAt + 90_001)
        let actions = m.upstreamAcquireFailed(UpstreamError(code: .connectFailed, detail: "refused"))
        #expect(describe(actions).contains("writeHead 502 MISS upstream-failed"))
    }

    @Test func aSuccessfulRefetchReplacesTheStaleEntry() {
        var m = Self.lookingUp("/e")
        _ = m.lookupCompleted(request: 1, .stale(Self.entry("/e"), pastTTL: 5_000), now: Self.storedAt + 35_000)
        _ = m.upstreamAcquired(reused: false)
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok), now: Self.storedAt + 35_100)
        _ = m.upstreamBody(ByteBuffer(string: "fresh"))
        let actions = m.upstreamEnd(now: Self.storedAt + 35_200)
        guard case .store(let request, _) = actions.last else {
            Issue.record("not stored: \(describe(actions))")
            return
        }
        #expect(request.entry.grace == 60_000)
        #expect(String(buffer: request.entry.body) == "fresh")
    }

    @Test func anUnknownStatusIsForwardedEvenWithAStaleEntry() {
        var m = Self.lookingUp("/e")
        _ = m.lookupCompleted(request: 1, .stale(Self.entry("/e"), pastTTL: 5_000), now: Self.storedAt + 35_000)
        _ = m.upstreamAcquired(reused: false)
        #expect(
            describe(m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .notFound), now: Self.storedAt + 35_100)) == [
                "setTimer upstream", "writeHead 404 MISS status",
            ])
    }
}
