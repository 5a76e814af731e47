import NIOConcurrencyHelpers
import NIOCore

/// Request coalescing in one instance: concurrent misses for the same key make one origin
/// request. The first becomes the **leader** and fetches; the others **wait** for what it
/// stores (each on its own event loop) or are **released** to fetch themselves when the
/// leader's response turns out not storable, fails, or its client leaves. A key whose response
/// was not storable is remembered for ``hitForMissDuration`` so the next burst goes straight to
/// the origin instead of queueing behind a fetch that cannot help it (Varnish's hit-for-miss).
///
/// Bounds: at most ``maxKeys`` keys in flight (past it, requests fetch alone) and
/// ``maxWaitersPerKey`` waiters per key (past it, they fetch alone); remembered uncacheable keys
/// are dropped once expired, and at most ``maxKeys`` of them are kept.
final class Coalescer: Sendable {
    static let maxKeys = 10_000
    static let maxWaitersPerKey = 10_000
    static let hitForMissDuration = TimeAmount.seconds(10)

    /// What a request that joined does next.
    enum Role: Sendable, Equatable {
        /// Fetch, and report with ``complete(_:with:)``.
        case leader(Ticket)
        /// Wait for ``Delivery``; stop waiting with ``leave(_:)``.
        case follower(WaiterID)
        /// Fetch alone (hit-for-miss, or the limits are reached).
        case alone
    }

    /// What a waiter gets.
    enum Delivery: Sendable {
        /// The leader's stored entry.
        case entry(CacheEntry)
        /// A stale entry the leader served while another instance fetches.
        case stale(CacheEntry)
        /// Fetch yourself.
        case released
    }

    /// How a leader's fetch ended.
    enum Outcome: Sendable {
        case stored(CacheEntry)
        /// Another instance holds the fetch lease; the leader served this stale entry meanwhile.
        case servedStale(CacheEntry)
        /// Not storable: waiters are released and the key is remembered as uncacheable.
        case uncacheable
        /// Failed (origin or Redis trouble, the client left): waiters are released.
        case failed
    }

    struct Ticket: Sendable, Hashable {
        let digest: String
        let id: Int
    }

    struct WaiterID: Sendable, Hashable {
        let digest: String
        let id: Int
    }

    private struct Waiter {
        let id: Int
        let eventLoop: EventLoop
        let deliver: @Sendable (Delivery) -> Void
    }

    private struct Flight {
        let leader: Int
        var waiters: [Waiter] = []
    }

    private struct State {
        var flights: [String: Flight] = [:]
        var uncacheable: [String: NIODeadline] = [:]
        var nextID = 0
    }

    private let state = NIOLockedValueBox(State())

    /// Joins the fetch of `digest`. `deliver` is called on `eventLoop` for a follower.
    func join(_ digest: String, eventLoop: EventLoop, now: NIODeadline = .now(), deliver: @escaping @Sendable (Delivery) -> Void) -> Role {
        state.withLockedValue { state in
            state.nextID += 1
            let id = state.nextID
            if let until = state.uncacheable[digest] {
                if until > now { return .alone }
                state.uncacheable[digest] = nil
            }
            if var flight = state.flights[digest] {
                guard flight.waiters.count < Self.maxWaitersPerKey else { return .alone }
                flight.waiters.append(Waiter(id: id, eventLoop: eventLoop, deliver: deliver))
                state.flights[digest] = flight
                return .follower(WaiterID(digest: digest, id: id))
            }
            guard state.flights.count < Self.maxKeys else { return .alone }
            state.flights[digest] = Flight(leader: id)
            return .leader(Ticket(digest: digest, id: id))
        }
    }

    /// The leader's fetch ended: every waiter gets the entry, or is released.
    func complete(_ ticket: Ticket, with outcome: Outcome, now: NIODeadline = .now()) {
        let waiters: [Waiter] = state.withLockedValue { state in
            guard let flight = state.flights[ticket.digest], flight.leader == ticket.id else { return [] }
            state.flights[ticket.digest] = nil
            if case .uncacheable = outcome {
                if state.uncacheable.count >= Self.maxKeys {
                    state.uncacheable = state.uncacheable.filter { $0.value > now }
                }
                if state.uncacheable.count < Self.maxKeys { state.uncacheable[ticket.digest] = now + Self.hitForMissDuration }
            }
            return flight.waiters
        }
        let delivery: Delivery
        switch outcome {
        case .stored(let entry): delivery = .entry(entry)
        case .servedStale(let entry): delivery = .stale(entry)
        case .uncacheable, .failed: delivery = .released
        }
        for waiter in waiters {
            let deliver = waiter.deliver
            waiter.eventLoop.execute { deliver(delivery) }
        }
    }

    /// A waiter stops waiting (its client left, or its wait timed out).
    func leave(_ waiter: WaiterID) {
        state.withLockedValue { state in
            state.flights[waiter.digest]?.waiters.removeAll { $0.id == waiter.id }
        }
    }

    /// Keys in flight (for tests and metrics).
    var inFlight: Int { state.withLockedValue { $0.flights.count } }
}
