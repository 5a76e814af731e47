import NIOConcurrencyHelpers
import NIOCore

/// How the request that leads its key's fetch in this instance proceeds, once the instances
/// sharing the Redis have had their say.
enum LeaseResolution: Sendable {
    /// This instance holds the lease: fetch, store, release.
    case acquired(token: String)
    /// Another instance fetched and stored it meanwhile.
    case filled(CacheEntry)
    /// Another instance holds the lease, and the caller has a stale entry to serve meanwhile.
    case taken
    /// Waited `coalesce_timeout` for another instance: fetch without the lease.
    case fetchAlone
    /// Redis trouble: fetch without the lease (never an error for the client).
    case unavailable
    /// The holder found the answer not storable: fetch now, and let local waiters go too.
    case uncacheable
}

/// The pure rule of waiting for another instance's fetch: after each look at Redis, resolve,
/// try to take the lease (its holder gave up or died), or look again.
struct LeaseWait: Sendable {
    enum Step: Equatable {
        case resolve(filledOrAlone: Bool)
        case tryAcquire
        case look(after: TimeAmount)
    }

    let deadline: NIODeadline
    let interval: TimeAmount

    func next(after state: FillState, now: NIODeadline) -> Step {
        switch state {
        case .filled: return .resolve(filledOrAlone: true)
        case .uncacheable: return .resolve(filledOrAlone: false)
        case .abandoned: return now < deadline ? .tryAcquire : .resolve(filledOrAlone: false)
        case .pending: return now < deadline ? .look(after: min(interval, deadline - now)) : .resolve(filledOrAlone: false)
        }
    }
}

/// Takes fetch leases in Redis and waits for other instances' fills: tries `SET NX PX`; when
/// the lease is taken, looks at the key every ``pollInterval`` (or at once when told through
/// ``fillAnnounced(_:)``, by the subscriber of the fill channel) until the entry appears, the
/// lease is free again (then tries to take it), or the wait limit passes.
final class LeaseCoordinator: Sendable {
    /// How often a waiter looks when no notification comes. 50 ms.
    let pollInterval: TimeAmount
    private let storage: any CacheStorage
    /// Tokens of the leases this instance holds and renews.
    private let renewing = NIOLockedValueBox(Set<String>())
    /// Waiters by key digest, woken by fill notifications.
    private let waiters = NIOLockedValueBox([String: [Int: @Sendable () -> Void]]())
    private let ids = NIOLockedValueBox(0)

    init(storage: any CacheStorage, pollInterval: TimeAmount = .milliseconds(50)) {
        self.storage = storage
        self.pollInterval = pollInterval
    }

    /// Keys with a waiter registered for announcements (for tests: it must drop back to zero).
    var waitingKeys: Int { waiters.withLockedValue { $0.count } }

    /// A fill was announced for `digest` (a lease released): its waiters look now.
    func fillAnnounced(_ digest: String) {
        let wake = waiters.withLockedValue { $0[digest].map { Array($0.values) } ?? [] }
        for callback in wake { callback() }
    }

    /// Resolves the lease of `key`: `completion` runs once, on `eventLoop`.
    ///
    /// - Parameter takenIsEnough: answer ``LeaseResolution/taken`` at once when another instance
    ///   holds the lease (the caller serves a stale entry) instead of waiting for its fill.
    func resolve(
        _ key: CacheKey, ttl: TimeAmount, waitLimit: TimeAmount, takenIsEnough: Bool = false, on eventLoop: EventLoop,
        _ completion: @escaping @Sendable (LeaseResolution) -> Void
    ) {
        let token = Self.randomToken()
        let wait = LeaseWait(deadline: .now() + waitLimit, interval: pollInterval)
        let digest = key.digest
        let id = ids.withLockedValue { value -> Int in
            value += 1
            return value
        }
        let storage = self.storage
        let done = NIOLockedValueBox(false)
        let pending = NIOLockedValueBox<Scheduled<Void>?>(nil)

        @Sendable func finish(_ resolution: LeaseResolution) {
            let first = done.withLockedValue { done in
                defer { done = true }
                return !done
            }
            guard first else {
                // Resolved already (a wake-up raced a poll): a lease taken meanwhile goes back.
                if case .acquired(let token) = resolution { self.release(key, token: token, on: eventLoop) }
                return
            }
            waiters.withLockedValue { waiters in
                waiters[digest]?.removeValue(forKey: id)
                if waiters[digest]?.isEmpty == true { waiters[digest] = nil }
            }
            pending.withLockedValue { $0?.cancel() }
            if case .acquired(let token) = resolution { renew(key, token: token, ttl: ttl, on: eventLoop) }
            completion(resolution)
        }
        @Sendable func attempt() {
            storage.acquireLease(key, token: token, ttl: ttl, on: eventLoop).whenComplete { result in
                switch result {
                case .success(true):
                    finish(.acquired(token: token))
                case _ where done.withLockedValue({ $0 }):
                    return
                case .success(false) where takenIsEnough: finish(.taken)
                case .success(false):
                    // Taken: from now on, fill announcements wake this waiter early.
                    self.waiters.withLockedValue { $0[digest, default: [:]][id] = { eventLoop.execute { peek() } } }
                    peek()  // it may be filled already
                case .failure: finish(.unavailable)
                }
            }
        }
        @Sendable func look(after delay: TimeAmount) {
            let task = eventLoop.scheduleTask(in: delay) { peek() }
            pending.withLockedValue {
                $0?.cancel()
                $0 = task
            }
        }
        @Sendable func peek() {
            guard !done.withLockedValue({ $0 }) else { return }
            storage.peekFill(key, on: eventLoop).whenComplete { result in
                guard !done.withLockedValue({ $0 }) else { return }
                switch result {
                case .success(let state):
                    switch wait.next(after: state, now: .now()) {
                    case .resolve(true):
                        if case .filled(let entry) = state { finish(.filled(entry)) }
                    case .resolve(false):
                        if case .uncacheable = state { finish(.uncacheable) } else { finish(.fetchAlone) }
                    case .tryAcquire: attempt()
                    case .look(let delay): look(after: delay)
                    }
                case .failure:
                    finish(.unavailable)
                }
            }
        }
        attempt()
    }

    /// Keeps a held lease alive while its holder fetches (a slow origin must not let another
    /// instance fetch too): every third of its TTL, extends it if the token still holds it; stops
    /// once the lease is released (by the store, or by the holder giving up) or Redis fails. A
    /// holder that dies stops renewing, and the lease expires.
    func renew(_ key: CacheKey, token: String, ttl: TimeAmount, on eventLoop: EventLoop) {
        let interval = TimeAmount.nanoseconds(max(ttl.nanoseconds / 3, TimeAmount.milliseconds(20).nanoseconds))
        let storage = self.storage
        let renewing = self.renewing
        renewing.withLockedValue { _ = $0.insert(token) }
        @Sendable func tick() {
            // Released since (most fetches end long before the first tick): nothing to ask Redis.
            guard renewing.withLockedValue({ $0.contains(token) }) else { return }
            storage.renewLease(key, token: token, ttl: ttl, on: eventLoop).whenComplete { result in
                if case .success(true) = result {
                    eventLoop.scheduleTask(in: interval) { tick() }
                } else {
                    _ = renewing.withLockedValue { $0.remove(token) }
                }
            }
        }
        eventLoop.scheduleTask(in: interval) { tick() }
    }

    /// Gives a lease back (compare and delete, then announce), ignoring Redis trouble: the lease
    /// expires by itself.
    func release(_ key: CacheKey, token: String, inRedis: Bool = true, uncacheable: Bool = false, on eventLoop: EventLoop) {
        _ = renewing.withLockedValue { $0.remove(token) }
        if inRedis { storage.releaseLease(key, token: token, uncacheable: uncacheable, on: eventLoop).whenFailure { _ in } }
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next(), radix: 16) + String(generator.next(), radix: 16)
    }
}
