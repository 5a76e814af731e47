import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import CacheProxy

/// Request coalescing as transitions of ``ProxyStateMachine``, and the ``Coalescer`` registry.
@Suite struct CoalescingStateMachineTests {
    static let settings = ProxyStateMachineTests.settings(coalesce: true)
    static let ticket = Coalescer.Ticket(digest: "d", id: 1)
    static let waiter = Coalescer.WaiterID(digest: "d", id: 2)
    static let entry = CacheEntry(
        status: 200, headers: [("content-type", "text/plain")], body: ByteBuffer(string: "shared"), storedAt: 1_000_000, ttl: 30_000)

    static func joining() -> ProxyStateMachine {
        var m = ProxyStateMachineTests.machine(settings)
        _ = m.requestHead(ProxyStateMachineTests.get)
        _ = m.requestEnd()
        #expect(describe(m.lookupCompleted(request: 1, .miss, now: 0)) == ["joinFetch 1"])
        return m
    }

    /// The leader of its instance takes the lease across instances, fetches, stores (which gives
    /// the lease back) and hands the entry to its waiters.
    @Test func theLeaderFetchesAndHandsItsStoredEntryOn() {
        var m = Self.joining()
        // No stale entry: a lease held elsewhere means waiting for the fill.
        #expect(describe(m.fetchJoined(request: 1, .leader(Self.ticket))) == ["lease 2500ms/5000ms 1"])
        #expect(
            describe(m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, .acquired(token: "t"), now: 0)) == [
                "setTimer upstream", "acquireUpstream",
            ])
        _ = m.upstreamAcquired(reused: false)
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))
        _ = m.upstreamBody(ByteBuffer(string: "fresh"))
        // The store releases the lease itself (one round trip), so no separate release follows.
        let stored = m.upstreamEnd(now: 5)
        guard case .store(let request, _) = stored.last else {
            Issue.record("not stored")
            return
        }
        #expect(request.leaseToken == "t")
        let actions = m.storeCompleted(request: 1, .success(.stored))
        // Only the renewal stops: the store released the lease in Redis.
        #expect(describe(actions).prefix(2) == ["leaseReleasedByStore t", "completeFetch stored"])
        #expect(!describe(actions).contains { $0.hasPrefix("releaseLease") })
        guard case .completeFetch(let ticket, .stored(let entry)) = actions[1] else { return }
        #expect(ticket == Self.ticket)
        #expect(String(buffer: entry.body) == "fresh")
    }

    @Test func aFollowerIsAnsweredWithTheLeadersEntry() {
        var m = Self.joining()
        #expect(describe(m.fetchJoined(request: 1, .follower(Self.waiter))) == ["setTimer upstream"])
        #expect(
            describe(m.fetchDelivered(request: 1, .entry(Self.entry), now: 1_002_000)) == [
                "cancelTimer upstream", "writeHead 200 HIT coalesced age=2", "writeBody 6", "log GET /c 200 COALESCED",
                "writeEnd keep-alive",
                "setTimer client",
            ])
        #expect(m.isIdle)
    }

    @Test func aReleasedFollowerFetchesItself() {
        var m = Self.joining()
        _ = m.fetchJoined(request: 1, .follower(Self.waiter))
        #expect(
            describe(m.fetchDelivered(request: 1, .released, now: 0)) == ["cancelTimer upstream", "setTimer upstream", "acquireUpstream"])
        // It is not a leader: its own result is not reported.
        _ = m.upstreamAcquired(reused: false)
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))
        _ = m.upstreamEnd(now: 5)
        #expect(!describe(m.storeCompleted(request: 1, .success(.stored))).contains { $0.hasPrefix("completeFetch") })
    }

    @Test func aFollowerThatWaitedTooLongLeavesAndFetches() {
        var m = Self.joining()
        let actions = m.fetchJoined(request: 1, .follower(Self.waiter))
        guard case .setTimer(.upstream, let id, let after) = actions.first else {
            Issue.record("no timer")
            return
        }
        #expect(after == .seconds(10))  // twice coalesce_timeout: its leader may wait for another instance first
        #expect(describe(m.timerFired(.upstream, id: id)) == ["leaveFetch", "setTimer upstream", "acquireUpstream"])
        // A late delivery is ignored.
        #expect(describe(m.fetchDelivered(request: 1, .entry(Self.entry), now: 0)) == [])
    }

    @Test func anotherInstancesFillAnswersTheLeaderAndItsWaiters() {
        var m = Self.joining()
        _ = m.fetchJoined(request: 1, .leader(Self.ticket))
        let actions = m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, .filled(Self.entry), now: 1_001_000)
        #expect(
            describe(actions) == [
                "completeFetch stored", "writeHead 200 HIT coalesced age=1", "writeBody 6", "log GET /c 200 COALESCED",
                "writeEnd keep-alive",
                "setTimer client",
            ])
    }

    /// With a stale entry (inside stale_if_error), a lease held by another instance means: serve
    /// it now, and so do this instance's waiters.
    @Test func aLeaseHeldElsewhereServesTheStaleEntryToTheLeaderAndItsWaiters() {
        let settings = ProxyStateMachineTests.settings(routes: "  - path: /c\n    stale_if_error: 60s", coalesce: true)
        var m = ProxyStateMachineTests.machine(settings)
        _ = m.requestHead(ProxyStateMachineTests.get)
        _ = m.requestEnd()
        #expect(describe(m.lookupCompleted(request: 1, .stale(Self.entry, pastTTL: 1_000), now: 1_031_000)) == ["joinFetch 1"])
        #expect(describe(m.fetchJoined(request: 1, .leader(Self.ticket))) == ["lease 2500ms/5000ms or-stale 1"])
        #expect(
            describe(m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, .taken, now: 1_031_000)) == [
                "completeFetch servedStale", "writeHead 200 STALE revalidating age=31", "writeBody 6", "log GET /c 200 STALE",
                "writeEnd keep-alive", "setTimer client",
            ])
        var waiter = ProxyStateMachineTests.machine(settings)
        _ = waiter.requestHead(ProxyStateMachineTests.get)
        _ = waiter.requestEnd()
        _ = waiter.lookupCompleted(request: 1, .stale(Self.entry, pastTTL: 1_000), now: 1_031_000)
        _ = waiter.fetchJoined(request: 1, .follower(Self.waiter))
        #expect(
            describe(waiter.fetchDelivered(request: 1, .stale(Self.entry), now: 1_031_000)).contains(
                "writeHead 200 STALE revalidating age=31"))
    }

    /// Another instance found the answer not storable: the waiters here go at once too, and the
    /// key is remembered as uncacheable here as well.
    @Test func anUncacheableFillReleasesTheLocalWaitersAtOnce() {
        var m = Self.joining()
        _ = m.fetchJoined(request: 1, .leader(Self.ticket))
        #expect(
            describe(m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, .uncacheable, now: 0)) == [
                "completeFetch uncacheable", "setTimer upstream", "acquireUpstream",
            ])
    }

    @Test func withoutTheLeaseTheLeaderFetchesAlone() {
        for resolution in [LeaseResolution.fetchAlone, .unavailable] {
            var m = Self.joining()
            _ = m.fetchJoined(request: 1, .leader(Self.ticket))
            #expect(
                describe(m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, resolution, now: 0)) == [
                    "setTimer upstream", "acquireUpstream",
                ])
            _ = m.upstreamAcquired(reused: false)
            _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))
            _ = m.upstreamEnd(now: 5)
            // No lease to give back; the waiters still get the entry.
            #expect(describe(m.storeCompleted(request: 1, .success(.stored))).first == "completeFetch stored")
        }
    }

    @Test func aLeaseTakenForARequestThatLeftIsGivenBack() {
        var m = Self.joining()
        _ = m.fetchJoined(request: 1, .leader(Self.ticket))
        #expect(describe(m.clientClosed()).first == "completeFetch failed")
        #expect(describe(m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, .acquired(token: "t"), now: 0)) == ["releaseLease t"])
    }

    @Test func anUnstorableAnswerReleasesTheWaitersAsUncacheable() {
        var m = Self.joining()
        _ = m.fetchJoined(request: 1, .leader(Self.ticket))
        _ = m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, .acquired(token: "t"), now: 0)
        _ = m.upstreamAcquired(reused: false)
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "set-cookie", value: "a=b")
        #expect(
            describe(m.upstreamHead(head)) == [
                "setTimer upstream", "releaseLease t uncacheable", "completeFetch uncacheable", "writeHead 200 MISS set-cookie",
            ])
    }

    @Test func aFailingOriginOrALeavingClientReleasesTheWaiters() {
        var m = Self.joining()
        _ = m.fetchJoined(request: 1, .leader(Self.ticket))
        _ = m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, .acquired(token: "t"), now: 0)
        _ = m.upstreamAcquired(reused: false)
        #expect(describe(m.upstreamFailed(UpstreamError.closed)).contains("completeFetch failed"))

        var gone = Self.joining()
        _ = gone.fetchJoined(request: 1, .leader(Self.ticket))
        #expect(describe(gone.clientClosed()).first == "completeFetch failed")

        var waiting = Self.joining()
        _ = waiting.fetchJoined(request: 1, .follower(Self.waiter))
        #expect(describe(waiting.clientClosed()).first == "leaveFetch")
    }

    @Test func theWaitRule() {
        let start = NIODeadline.now()
        let wait = LeaseWait(deadline: start + .seconds(5), interval: .milliseconds(50))
        #expect(wait.next(after: .filled(Self.entry), now: start) == .resolve(filledOrAlone: true))
        #expect(wait.next(after: .pending, now: start) == .look(after: .milliseconds(50)))
        #expect(wait.next(after: .pending, now: start + .milliseconds(4_980)) == .look(after: .milliseconds(20)))
        #expect(wait.next(after: .pending, now: start + .seconds(5)) == .resolve(filledOrAlone: false))
        #expect(wait.next(after: .abandoned(generation: 3), now: start) == .tryAcquire)
        #expect(wait.next(after: .abandoned(generation: 3), now: start + .seconds(6)) == .resolve(filledOrAlone: false))
    }

    @Test func aRoleForARequestThatLeftIsGivenBack() {
        var m = Self.joining()
        _ = m.clientClosed()
        #expect(describe(m.fetchJoined(request: 1, .leader(Self.ticket))) == ["completeFetch failed"])
        #expect(describe(m.fetchJoined(request: 1, .follower(Self.waiter))) == ["leaveFetch"])
    }

    @Test func headRequestsAndStaleAnswersDoNotCoalesce() {
        var m = ProxyStateMachineTests.machine(Self.settings)
        _ = m.requestHead(ProxyStateMachineTests.head("HEAD /c HTTP/1.1\r\nHost: h\r\n\r\n"))
        _ = m.requestEnd()
        #expect(describe(m.lookupCompleted(request: 1, .miss, now: 0)) == ["setTimer upstream", "acquireUpstream"])
    }

    // MARK: The registry

    @Test func theRegistryMakesOneLeaderAndDeliversToEveryWaiter() async throws {
        let coalescer = Coalescer()
        let loop = EmbeddedEventLoop()
        let received = NIOLockedValueBox<[String]>([])
        func deliver(_ name: String) -> @Sendable (Coalescer.Delivery) -> Void {
            { delivery in
                switch delivery {
                case .entry(let entry): received.withLockedValue { $0.append("\(name) \(String(buffer: entry.body))") }
                case .stale(let entry): received.withLockedValue { $0.append("\(name) stale \(String(buffer: entry.body))") }
                case .released: received.withLockedValue { $0.append("\(name) released") }
                }
            }
        }
        guard case .leader(let ticket) = coalescer.join("k", eventLoop: loop, deliver: deliver("a")) else {
            Issue.record("not a leader")
            return
        }
        guard case .follower = coalescer.join("k", eventLoop: loop, deliver: deliver("b")) else { return }
        guard case .follower(let leaving) = coalescer.join("k", eventLoop: loop, deliver: deliver("c")) else { return }
        guard case .leader = coalescer.join("other", eventLoop: loop, deliver: deliver("x")) else { return }
        coalescer.leave(leaving)
        coalescer.complete(ticket, with: .stored(Self.entry))
        loop.run()
        #expect(received.withLockedValue { $0 } == ["b shared"])
        // The key is free again.
        guard case .leader(let next) = coalescer.join("k", eventLoop: loop, deliver: deliver("d")) else { return }
        _ = coalescer.join("k", eventLoop: loop, deliver: deliver("e"))
        coalescer.complete(next, with: .uncacheable)
        loop.run()
        #expect(received.withLockedValue { $0 } == ["b shared", "e released"])
        // Hit-for-miss: the next requests for that key fetch alone, for a while.
        let now = NIODeadline.now()
        #expect(coalescer.join("k", eventLoop: loop, now: now, deliver: deliver("f")) == .alone)
        if case .leader = coalescer.join("k", eventLoop: loop, now: now + Coalescer.hitForMissDuration + .seconds(1), deliver: deliver("g"))
        {
        } else {
            Issue.record("still uncacheable after the hit-for-miss time")
        }
    }
}

extension CoalescingStateMachineTests {
    /// A store that fails (Redis trouble) may not have released the lease: it is given back
    /// separately; a refused store released it in its script.
    @Test func aFailedStoreGivesTheLeaseBackSeparately() {
        for (result, release) in [
            (Result<StoreReply, any Error>.failure(RedisClientError.timeout), true), (.success(.refusedPurged), false),
        ] {
            var m = Self.joining()
            _ = m.fetchJoined(request: 1, .leader(Self.ticket))
            _ = m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, .acquired(token: "t"), now: 0)
            _ = m.upstreamAcquired(reused: false)
            _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))
            _ = m.upstreamEnd(now: 5)
            let actions = describe(m.storeCompleted(request: 1, result))
            #expect(actions.contains("releaseLease t") == release)
            #expect(actions.contains("completeFetch failed"))
        }
    }
}

/// The fixes a review of the stampede code asked for.
@Suite struct CoalescingReviewTests {
    static let settings = ProxyStateMachineTests.settings(
        routes: "  - path: /c\n    stale_if_error: 60s\n    stale_while_revalidate: 0s\n  - path: /w\n    stale_while_revalidate: 60s",
        coalesce: true)
    static let ticket = Coalescer.Ticket(digest: "d", id: 1)
    static let entry = CacheEntry(
        status: 200, headers: [], body: ByteBuffer(string: "old"), storedAt: 1_000_000, ttl: 30_000, grace: 60_000)

    static func leader(_ raw: String = "GET /c HTTP/1.1\r\nHost: h\r\n\r\n", stale: Bool = true, connected: Bool = false)
        -> ProxyStateMachine
    {
        var m = ProxyStateMachineTests.machine(settings)
        _ = m.requestHead(ProxyStateMachineTests.head(raw))
        _ = m.requestEnd()
        _ = m.lookupCompleted(request: 1, stale ? .stale(entry, pastTTL: 1_000) : .miss, now: 1_031_000)
        _ = m.fetchJoined(request: 1, .leader(ticket))
        _ = m.leaseResolved(request: 1, key: ProxyStateMachineTests.key, .acquired(token: "t"), now: 1_031_000)
        if connected { _ = m.upstreamAcquired(reused: false) }
        return m
    }

    @Test func aLeaderServingStaleHandsTheStaleEntryToItsWaiters() {
        var m = Self.leader()
        let actions = describe(m.upstreamAcquireFailed(UpstreamError(code: .connectFailed, detail: "x"), now: 1_032_000))
        #expect(actions.contains("completeFetch servedStale"))
        #expect(actions.contains("writeHead 200 STALE origin-down age=32"))
    }

    @Test func anErrorStatusIsNotRememberedAsUncacheable() {
        var m = Self.leader(stale: false, connected: true)
        let actions = describe(m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .serviceUnavailable), now: 1_031_500))
        #expect(actions.contains("completeFetch failed"))
        #expect(!actions.contains("completeFetch uncacheable"))
    }

    @Test func theStaleWindowIsCheckedWhenTheOriginFailsNotWhenTheLookupAnswered() {
        var m = Self.leader()
        // 30 s TTL + 60 s window: at storedAt + 91 s the window has passed.
        let actions = describe(m.upstreamAcquireFailed(UpstreamError(code: .connectFailed, detail: "x"), now: 1_091_001))
        #expect(actions.contains("writeHead 502 MISS upstream-failed"))
    }

    @Test func aWaiterThatTimesOutWithAStaleEntryServesIt() {
        var m = ProxyStateMachineTests.machine(Self.settings)
        _ = m.requestHead(ProxyStateMachineTests.get)
        _ = m.requestEnd()
        _ = m.lookupCompleted(request: 1, .stale(Self.entry, pastTTL: 1_000), now: 1_031_000)
        let joined = m.fetchJoined(request: 1, .follower(Coalescer.WaiterID(digest: "d", id: 2)))
        guard case .setTimer(.upstream, let id, _) = joined.first else {
            Issue.record("no timer")
            return
        }
        let actions = describe(m.timerFired(.upstream, id: id, now: 1_041_000))
        #expect(actions.prefix(2) == ["leaveFetch", "writeHead 200 STALE origin-down age=41"])
    }

    @Test func aHeadRequestServedStaleAsksNoRefresh() {
        var m = ProxyStateMachineTests.machine(Self.settings)
        _ = m.requestHead(ProxyStateMachineTests.head("HEAD /w HTTP/1.1\r\nHost: h\r\n\r\n"))
        _ = m.requestEnd()
        let actions = describe(m.lookupCompleted(request: 1, .stale(Self.entry, pastTTL: 1_000), now: 1_031_000))
        #expect(actions.first == "writeHead 200 STALE revalidating age=31")
        #expect(!actions.contains { $0.hasPrefix("refresh") })
    }

    @Test func aCacheFillGoesWithoutTheClientsValidatorsAndRange() {
        var m = ProxyStateMachineTests.machine(ProxyStateMachineTests.settings())
        _ = m.requestHead(
            ProxyStateMachineTests.head("GET /c HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\nRange: bytes=0-1\r\nAccept: a\r\n\r\n"))
        _ = m.requestEnd()
        _ = m.lookupCompleted(request: 1, .miss, now: 0)
        guard case .writeUpstream(let parts) = m.upstreamAcquired(reused: false).first, case .head(let head) = parts.first else {
            Issue.record("nothing written")
            return
        }
        #expect(!head.headers.contains(name: "if-none-match"))
        #expect(!head.headers.contains(name: "range"))
        #expect(head.headers.first(name: "accept") == "a")
        // An uncached request keeps them.
        var bypass = ProxyStateMachineTests.machine(ProxyStateMachineTests.settings())
        _ = bypass.requestHead(ProxyStateMachineTests.head("GET /other HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n"))
        guard case .writeUpstream(let forwarded) = bypass.upstreamAcquired(reused: false).first, case .head(let uncached) = forwarded.first
        else { return }
        #expect(uncached.headers.first(name: "range") == "bytes=0-1")
    }
}

extension CoalescingStateMachineTests {
    /// `coalesce_across_instances: false`: the instance's leader fetches without a lease.
    @Test func withoutCrossInstanceCoalescingTheLeaderTakesNoLease() {
        let settings = ProxyStateMachineTests.settings(routes: "  - path: /c\n    coalesce_across_instances: false", coalesce: true)
        var m = ProxyStateMachineTests.machine(settings)
        _ = m.requestHead(ProxyStateMachineTests.get)
        _ = m.requestEnd()
        #expect(describe(m.lookupCompleted(request: 1, .miss, now: 0)) == ["joinFetch 1"])
        #expect(describe(m.fetchJoined(request: 1, .leader(Self.ticket))) == ["setTimer upstream", "acquireUpstream"])
        _ = m.upstreamAcquired(reused: false)
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))
        let stored = m.upstreamEnd(now: 5)
        guard case .store(let request, _) = stored.last else {
            Issue.record("not stored")
            return
        }
        #expect(request.leaseToken == nil)
        #expect(describe(m.storeCompleted(request: 1, .success(.stored))).first == "completeFetch stored")
    }
}
