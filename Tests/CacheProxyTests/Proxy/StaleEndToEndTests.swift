import Foundation
import NIOCore
import Testing
@testable import CacheProxy

/// `stale_while_revalidate` and `stale_if_error` with a real Redis and origin; the proxy's clock
/// is moved by the test.
@Suite(.serialized) struct StaleEndToEndTests {
    static let routes = """
          - path: /items/*
            ttl: 10s
            stale_while_revalidate: 20s
          - path: /toggle/*
            ttl: 10s
            stale_if_error: 60s
          - path: /slow/*
            ttl: 10s
            stale_while_revalidate: 20s
        """

    @Test func aStaleEntryIsServedAtOnceAndRefreshedOnceInTheBackground() async throws {
        try await withProxy(routes: Self.routes) { h in
            let first = try await h.client.get("/items/1")
            #expect(first.cacheStatus == "cache-proxy; fwd=uri-miss; stored")
            #expect(first.json["count"] as? Int == 1)

            h.clock.advance(by: .seconds(15))
            // Twenty clients at once: all get the stale entry, and the origin sees one refresh.
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<20 { group.addTask { try await h.client.get("/items/1") } }
                var responses: [TestResponse] = []
                for try await response in group { responses.append(response) }
                return responses
            }
            for response in responses {
                #expect(response.xCache == "STALE" || response.xCache == "HIT")
                if response.xCache == "STALE" {
                    #expect(response.cacheStatus == "cache-proxy; hit; fwd=stale; detail=revalidating")
                    #expect(response.json["count"] as? Int == 1)
                    #expect(response.headers.first(name: "age") == "15")
                }
            }
            #expect(try await waitUntil { h.origin.count("/items/1") == 2 })
            try await Task.sleep(for: .milliseconds(100))
            #expect(h.origin.count("/items/1") == 2)
            // Once refreshed (its store may still be on its way): a fresh HIT of the new copy.
            var refreshed = try await h.client.get("/items/1")
            let deadline = Date().addingTimeInterval(5)
            while refreshed.xCache != "HIT", Date() < deadline {
                try await Task.sleep(for: .milliseconds(10))
                refreshed = try await h.client.get("/items/1")
            }
            #expect(refreshed.xCache == "HIT")
            #expect(refreshed.json["count"] as? Int == 2)
            #expect(refreshed.headers.first(name: "age") == "0")

            // Past the window it is an ordinary refetch.
            h.clock.advance(by: .seconds(31))
            let late = try await h.client.get("/items/1")
            #expect(late.xCache == "MISS")
            #expect(late.cacheStatus == "cache-proxy; fwd=stale; stored")
        }
    }

    @Test func theOriginFailingServesTheStaleEntryInsideTheErrorWindow() async throws {
        try await withProxy(routes: Self.routes) { h in
            #expect(try await h.client.get("/toggle/a").cacheStatus == "cache-proxy; fwd=uri-miss; stored")
            h.clock.advance(by: .seconds(20))
            h.origin.setToggleStatus(503)
            let stale = try await h.client.get("/toggle/a")
            #expect(stale.status == .ok)
            #expect(stale.xCache == "STALE")
            #expect(stale.cacheStatus == "cache-proxy; hit; fwd=stale; fwd-status=503")
            #expect(stale.json["count"] as? Int == 1)
            #expect(stale.headers.first(name: "age") == "20")
            // A status not listed (404) is the origin's answer, passed on.
            h.origin.setToggleStatus(404)
            #expect(try await h.client.get("/toggle/a").status == .notFound)

            // The origin closing every connection unanswered: still the stale entry; past the
            // window, 502.
            h.origin.setToggleStatus(0)
            let down = try await h.client.get("/toggle/a")
            #expect(down.status == .ok)
            #expect(down.cacheStatus == "cache-proxy; hit; fwd=stale; detail=origin-down")
            #expect(try await h.client.get("/toggle/never-cached").status == .badGateway)
            h.clock.advance(by: .seconds(51))
            let tooOld = try await h.client.get("/toggle/a")
            #expect(tooOld.status == .badGateway)
        }
    }

    /// A refresh still running at shutdown is given what is left of the grace period, then
    /// cancelled (its upstream connection closed): shutdown does not wait for it.
    @Test func aRefreshInProgressIsCancelledAtShutdown() async throws {
        try await withProxy(routes: Self.routes) { h throws in
            #expect(try await h.client.get("/slow/1500").xCache == "MISS")
            h.clock.advance(by: .seconds(12))
            #expect(try await h.client.get("/slow/1500").xCache == "STALE")
            #expect(h.proxy.backgroundRefreshes == 1)
            let started = Date()
            await h.proxy.shutdown(gracePeriod: .milliseconds(300))
            // Nothing left running, and shutdown did not wait for the origin's 1.5 s (the bound
            // is loose: a loaded machine slows the rest of shutdown too).
            #expect(h.proxy.backgroundRefreshes == 0)
            let took = Date().timeIntervalSince(started)
            #expect(took < 10, "shutdown took \(took) s")
        }
    }

    /// A background refresh that fails (the origin answers 503) stores nothing: the stale entry
    /// is served again, and the next stale hit tries another refresh.
    @Test func aFailedRefreshLeavesTheStaleEntryAndIsTriedAgain() async throws {
        try await withProxy(
            routes: """
                  - path: /toggle/*
                    ttl: 10s
                    stale_while_revalidate: 60s
                """
        ) { h in
            #expect(try await h.client.get("/toggle/r").cacheStatus == "cache-proxy; fwd=uri-miss; stored")
            h.clock.advance(by: .seconds(15))
            h.origin.setToggleStatus(503)
            #expect(try await h.client.get("/toggle/r").xCache == "STALE")
            try await waitUntil { h.origin.count("/toggle/r") == 2 }
            try await Task.sleep(for: .milliseconds(100))  // the failed refresh is over
            let again = try await h.client.get("/toggle/r")
            #expect(again.xCache == "STALE")
            #expect(again.json["count"] as? Int == 1)
            try await waitUntil { h.origin.count("/toggle/r") == 3 }
            #expect(h.origin.count("/toggle/r") == 3)
            // The origin recovers: the next refresh replaces the entry.
            h.origin.setToggleStatus(200)
            try await Task.sleep(for: .milliseconds(50))
            _ = try await h.client.get("/toggle/r")
            var fresh = try await h.client.get("/toggle/r")
            let deadline = Date().addingTimeInterval(5)
            while fresh.xCache != "HIT", Date() < deadline {
                try await Task.sleep(for: .milliseconds(10))
                fresh = try await h.client.get("/toggle/r")
            }
            #expect(fresh.xCache == "HIT")
            #expect((fresh.json["count"] as? Int ?? 0) >= 4)
        }
    }

}
