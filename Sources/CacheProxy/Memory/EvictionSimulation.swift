/// Replays a Zipf key trace through ``MemoryTier`` with each eviction policy and reports hit ratios;
/// the core of `cache-proxy-bench eviction`, kept here so tests can run it with small parameters.
public enum EvictionSimulation {
    /// What to simulate. Defaults are the benchmark's: 1,000,000 keys, 5,000,000 requests, alpha
    /// 0.8 and 1.0, entries of 2,048 ± 512 bytes, caches of 1%, 5% and 10% of the key space's bytes.
    public struct Configuration: Sendable {
        /// Distinct keys (default 1,000,000).
        public var keys = 1_000_000
        /// Requests in each trace (default 5,000,000).
        public var requests = 5_000_000
        /// Zipf exponents, one trace each (default 0.8 and 1.0).
        public var alphas: [Double] = [0.8, 1.0]
        /// Mean entry size in bytes (default 2,048).
        public var entryBytes = 2048
        /// Entry sizes are uniform in `entryBytes ± sizeVariation` (default 512).
        public var sizeVariation = 512
        /// Cache sizes in percent of the sum of all entry sizes (default 1, 5, 10).
        public var cachePercents: [Double] = [1, 5, 10]
        /// Seed of the random trace and sizes (default 42).
        public var seed: UInt64 = 42

        /// The default configuration.
        public init() {}
    }

    /// One policy at one cache size on one trace.
    public struct Result: Sendable {
        /// "LRU" or "S3-FIFO".
        public var policy: String
        /// The trace's Zipf exponent.
        public var alpha: Double
        /// Cache size in percent of the key space's bytes.
        public var cachePercent: Double
        /// Cache size in bytes.
        public var maxBytes: Int
        /// Hits / requests over the whole trace, cold start included.
        public var hitRatio: Double
        /// Wall time per request (a get, plus a set on a miss), in nanoseconds.
        public var nanosecondsPerRequest: Double
    }

    /// Runs every alpha × cache size × policy of `configuration`, in that order.
    public static func run(_ configuration: Configuration) -> [Result] {
        var generator = SplitMix64(seed: configuration.seed)
        let keys = (0..<configuration.keys).map { _ in randomDigest(using: &generator) }
        let variation = configuration.sizeVariation
        let sizes = (0..<configuration.keys).map { _ in
            max(1, configuration.entryBytes + Int.random(in: -variation...variation, using: &generator))
        }
        let totalBytes = sizes.reduce(0, +)
        var results: [Result] = []
        for alpha in configuration.alphas {
            let trace = ZipfTrace.generate(
                keys: configuration.keys, requests: configuration.requests, alpha: alpha, using: &generator)
            for percent in configuration.cachePercents {
                let maxBytes = Int(Double(totalBytes) * percent / 100)
                func record(_ name: String, _ outcome: (hits: Int, nanoseconds: Double)) {
                    let requests = Double(max(1, trace.count))
                    results.append(
                        Result(
                            policy: name, alpha: alpha, cachePercent: percent, maxBytes: maxBytes,
                            hitRatio: Double(outcome.hits) / requests, nanosecondsPerRequest: outcome.nanoseconds / requests))
                }
                record("LRU", replay(LRUPolicy.self, trace: trace, keys: keys, sizes: sizes, maxBytes: maxBytes))
                record("S3-FIFO", replay(S3FIFOPolicy.self, trace: trace, keys: keys, sizes: sizes, maxBytes: maxBytes))
            }
        }
        return results
    }

    /// Replays `trace` (indexes into `keys` and `sizes`) as get-then-set-on-miss; returns hits and wall time.
    static func replay<Policy: EvictionPolicy>(
        _ policy: Policy.Type, trace: [Int32], keys: [String], sizes: [Int], maxBytes: Int
    ) -> (hits: Int, nanoseconds: Double) {
        var tier = MemoryTier<Int32, Policy>(maxBytes: maxBytes)
        var hits = 0
        let clock = ContinuousClock()
        let start = clock.now
        for id in trace {
            let index = Int(id)
            if tier.get(keys[index], now: 0) != nil {
                hits += 1
            } else {
                tier.set(keys[index], id, bytes: sizes[index], expiresAt: .max)
            }
        }
        let elapsed = start.duration(to: clock.now)
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        return (hits, nanoseconds)
    }

    /// A 32-character lowercase hex string, shaped like a cache key digest.
    private static func randomDigest(using generator: inout SplitMix64) -> String {
        let high = String(generator.next(), radix: 16)
        let low = String(generator.next(), radix: 16)
        return String(repeating: "0", count: 16 - high.count) + high + String(repeating: "0", count: 16 - low.count) + low
    }
}
