import NIOCore

/// The cache's storage in Redis: entries under `key_prefix + v2: + digest` with their tag
/// index, written and purged by the scripts of ``CacheIndexScripts``.
///
/// Lookups and stores can use different clients: a large `SET` on the connection that carries
/// lookups delays every `GET` queued behind it (see `make bench-redis-mixed`).
public struct RedisCacheStorage: CacheStorage {
    let lookups: RedisClient
    let stores: RedisClient
    /// Prepended to every key.
    public let keyPrefix: String
    /// Per-command timeout.
    public let timeout: TimeAmount
    /// Timeout of a purge script.
    public let purgeTimeout: TimeAmount
    /// Milliseconds since the Unix epoch.
    let clock: @Sendable () -> Int64
    /// The in-memory tier lookups fill, if any.
    let memory: MemoryCache?
    /// What keeps `memory` coherent; purges wait for its barrier (read-your-writes).
    let invalidations: RedisInvalidationListener?

    /// Creates a storage over `redis`.
    ///
    /// - Parameters:
    ///   - stores: the client that writes entries. Default: `redis`.
    ///   - clock: the wall clock in milliseconds since the epoch. Default: the system clock.
    public init(
        redis: RedisClient, stores: RedisClient? = nil, keyPrefix: String, timeout: TimeAmount, purgeTimeout: TimeAmount = .seconds(1),
        clock: @escaping @Sendable () -> Int64 = RedisCacheStorage.systemClock,
        memory: MemoryCache? = nil, invalidations: RedisInvalidationListener? = nil
    ) {
        self.lookups = redis
        self.stores = stores ?? redis
        self.keyPrefix = keyPrefix
        self.timeout = timeout
        self.purgeTimeout = purgeTimeout
        self.clock = clock
        self.memory = memory?.isEnabled == true ? memory : nil
        self.invalidations = invalidations
    }

    /// The system wall clock in milliseconds since the Unix epoch.
    @Sendable public static func systemClock() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    public func memoryLookup(_ key: CacheKey, now: Int64) -> CacheEntry? {
        memory?.lookup(key.digest, now: now)
    }

    public func lookup(_ key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<CacheRead> {
        // One promise and one callback on the hot path (not a chain of map/recover futures). The
        // purge generation comes in the same round trip. A fresh entry fills the memory tier,
        // unless an invalidation of the key came in while the lookup was on the wire.
        let promise = eventLoop.makePromise(of: CacheRead.self)
        let clock = self.clock
        let memory = self.memory
        let ticket = memory?.beginFill(key.digest)
        let command = RedisCommand("MGET", [.string(key.redisKey(prefix: keyPrefix)), .string(keyPrefix + "seq")])
        lookups.send(command, on: eventLoop, timeout: timeout).whenComplete { result in
            let now = clock()
            let read = Self.read(result, now: now)
            if let ticket {
                if case .fresh(let entry) = read.lookup {
                    memory!.finishFill(ticket, entry: entry, now: now)
                } else {
                    memory!.finishFill(ticket, entry: nil, now: now)
                }
            }
            promise.succeed(read)
        }
        return promise.futureResult
    }

    /// What an `MGET entry seq` reply means.
    static func read(_ result: Result<RedisValue, any Error>, now: Int64) -> CacheRead {
        guard case .success(.array(let values)) = result, values.count == 2 else {
            switch result {
            case .success(let other): return CacheRead(.unavailable(RedisClientError.unexpectedReply(to: "MGET", other)))
            case .failure(let error): return CacheRead(.unavailable(error))
            }
        }
        let generation: Int64
        switch values[1] {
        case .null: generation = 0
        case .bulkString(let bytes):
            guard let value = Int64(String(buffer: bytes)) else {
                return CacheRead(.unavailable(RedisClientError.unexpectedReply(to: "MGET", values[1])))
            }
            generation = value
        default:
            return CacheRead(.unavailable(RedisClientError.unexpectedReply(to: "MGET", values[1])))
        }
        switch values[0] {
        case .bulkString(let value):
            switch CacheEntryCodec.decode(value) {
            case .entry(let entry): return CacheRead(.classify(entry, now: now), generation: generation)
            case .unknownVersion: return CacheRead(.miss, generation: generation)
            case .corrupt:
                return CacheRead(
                    .corrupt(detail: "the stored value does not decode (\(value.readableBytes) bytes)"), generation: generation)
            }
        case .null:
            return CacheRead(.miss, generation: generation)
        case let other:
            return CacheRead(.unavailable(RedisClientError.unexpectedReply(to: "MGET", other)))
        }
    }

    public func store(_ request: StoreRequest, on eventLoop: EventLoop) -> EventLoopFuture<StoreReply> {
        let entry = request.entry
        let lifetime = max(1, entry.ttl + entry.grace)
        var arguments: [RedisArgument] = [
            .string(keyPrefix), .string(request.key.digest), .bytes(CacheEntryCodec.encode(entry)), .integer(lifetime),
            .integer(request.generation), .string(request.url), .integer(clock()), .string(request.leaseToken ?? ""),
        ]
        arguments.reserveCapacity(arguments.count + entry.tags.count)
        for tag in entry.tags { arguments.append(.string(CacheIndexName.tag(tag))) }
        return stores.run(CacheIndexScripts.store, arguments: arguments, on: eventLoop, timeout: timeout).flatMapThrowing { reply in
            switch reply {
            case .integer(1): return .stored
            case .integer(0): return .refusedPurged
            default: throw RedisClientError.unexpectedReply(to: "store script", reply)
            }
        }
    }

    public func purge(_ selector: PurgeSelector, soft: Bool, on eventLoop: EventLoop) -> EventLoopFuture<Int> {
        var arguments: [RedisArgument] = [.string(keyPrefix), soft ? "1" : "0", .integer(CacheIndexScripts.purgeRecordLifetime)]
        let script: RedisScript
        switch selector {
        case .tags(let tags):
            guard !tags.isEmpty else { return eventLoop.makeSucceededFuture(0) }
            script = CacheIndexScripts.purgeTags
            arguments += tags.map { .string(CacheIndexName.tag($0)) }
        case .url(let url):
            script = CacheIndexScripts.purgeURLs
            arguments += [.string(url), "1"]
        case .prefix(let prefix):
            script = CacheIndexScripts.purgeURLs
            arguments += [.string(prefix), "0"]
        }
        let purged = stores.run(script, arguments: arguments, on: eventLoop, timeout: purgeTimeout).flatMapThrowing { reply in
            guard case .integer(let count) = reply else { throw RedisClientError.unexpectedReply(to: "purge script", reply) }
            return Int(count)
        }
        guard let invalidations, memory != nil else { return purged }
        // Read-your-writes on this instance: answer once the purge's invalidations reached the
        // memory tier (other instances get them within the measured window).
        return purged.flatMap { count in invalidations.barrier(on: eventLoop).map { count } }
    }

    public func now() -> Int64 { clock() }

    /// `P lease:<digest>`.
    private func leaseKey(_ key: CacheKey) -> String { keyPrefix + "lease:" + key.digest }

    public func acquireLease(_ key: CacheKey, token: String, ttl: TimeAmount, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        // With the SET NX, pipelined (no extra round trip): the entry's header. A lookup that
        // missed just before another fetch stored and released the lease would otherwise take
        // the free lease and fetch again.
        let set = lookups.set(
            leaseKey(key), to: ByteBuffer(string: token), expiration: ttl, onlyIfAbsent: true, on: eventLoop, timeout: timeout)
        let header = lookups.send(
            RedisCommand("GETRANGE", [.string(key.redisKey(prefix: keyPrefix)), 0, 25]), on: eventLoop, timeout: timeout)
        let now = clock()
        return set.and(header).flatMap { acquired, header in
            guard acquired, Self.isFreshHeader(header, now: now) else { return eventLoop.makeSucceededFuture(acquired) }
            // Filled meanwhile: not ours to fetch. Waiters find the entry when they look.
            return self.releaseLease(key, token: token, uncacheable: false, on: eventLoop).map { false }
        }
    }

    /// Whether a `GETRANGE 0 25` of an entry shows a fresh entry of this format.
    static func isFreshHeader(_ reply: RedisValue, now: Int64) -> Bool {
        guard case .bulkString(var bytes) = reply, bytes.readableBytes == 26,
            bytes.readInteger(as: UInt8.self).map(CacheEntryCodec.readableVersions.contains) == true,
            let flags = bytes.readInteger(as: UInt8.self), flags & 1 == 0, let storedAt = bytes.readInteger(as: Int64.self),
            let ttl = bytes.readInteger(as: Int64.self)
        else { return false }
        return now < storedAt + ttl
    }

    /// `P hfm:<digest>`: the key's answer was not storable (hit-for-miss across instances).
    private func uncacheableKey(_ key: CacheKey) -> String { keyPrefix + "hfm:" + key.digest }

    public func releaseLease(_ key: CacheKey, token: String, uncacheable: Bool, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let marker = uncacheable ? uncacheableKey(key) : ""
        let lifetime = Coalescer.hitForMissDuration.nanoseconds / 1_000_000
        return lookups.run(
            CacheIndexScripts.releaseLease,
            arguments: [
                .string(leaseKey(key)), .string(token), .string(keyPrefix + "fills"), .string(key.digest), .string(marker),
                .integer(lifetime),
            ],
            on: eventLoop, timeout: timeout
        ).map { _ in }
    }

    public func renewLease(_ key: CacheKey, token: String, ttl: TimeAmount, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        lookups.run(
            CacheIndexScripts.renewLease,
            arguments: [.string(leaseKey(key)), .string(token), .integer(max(1, ttl.nanoseconds / 1_000_000))],
            on: eventLoop, timeout: timeout
        ).map { $0 == .integer(1) }
    }

    public func peekFill(_ key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<FillState> {
        // Polled every 50 ms by waiters: read only the entry's fixed header (26 bytes: version,
        // flags, storedAt, ttl, grace) with the lease and the generation, and the whole entry
        // only once it is fresh.
        let entryKey = key.redisKey(prefix: keyPrefix)
        let header = lookups.send(RedisCommand("GETRANGE", [.string(entryKey), 0, 25]), on: eventLoop, timeout: timeout)
        let lease = lookups.send(RedisCommand("GET", [.string(leaseKey(key))]), on: eventLoop, timeout: timeout)
        let seq = lookups.send(RedisCommand("GET", [.string(keyPrefix + "seq")]), on: eventLoop, timeout: timeout)
        let uncacheable = lookups.send(RedisCommand("EXISTS", [.string(uncacheableKey(key))]), on: eventLoop, timeout: timeout)
        let now = clock()
        return header.and(lease).and(seq).and(uncacheable).flatMap { values in
            let (((header, lease), seq), marked) = values
            if marked == .integer(1) { return eventLoop.makeSucceededFuture(.uncacheable) }
            if Self.isFreshHeader(header, now: now) {
                return self.lookups.send(RedisCommand("GET", [.string(entryKey)]), on: eventLoop, timeout: self.timeout).map { value in
                    if case .bulkString(let value) = value, case .entry(let entry) = CacheEntryCodec.decode(value) { return .filled(entry) }
                    return .abandoned(generation: 0)
                }
            }
            if case .bulkString = lease { return eventLoop.makeSucceededFuture(.pending) }
            let generation = seq.bytes.flatMap { Int64(String(buffer: $0)) } ?? 0
            return eventLoop.makeSucceededFuture(.abandoned(generation: generation))
        }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
