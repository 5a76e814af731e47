import NIOCore

/// How long to wait before reconnect attempt number `attempt` (0 = the first retry).
///
/// Exponential: `initial × 2^attempt`, capped at `maximum`, then spread by `jitter` so that many
/// proxies that lost the same Redis do not reconnect in lock-step. Pure: the random source is a
/// parameter (a number in `0..<1`), so tests pass a fixed one.
public struct RedisBackoff: Sendable, Hashable {
    /// Delay before the first retry. Default 25 ms.
    public var initial: TimeAmount
    /// Upper bound of the delay. Default 2 s.
    public var maximum: TimeAmount
    /// Fraction of the delay that is randomised, from 0 (none) to 1. Default 0.2 (±10%).
    public var jitter: Double

    /// Creates a policy; see the properties for the defaults.
    public init(initial: TimeAmount = .milliseconds(25), maximum: TimeAmount = .seconds(2), jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The delay before retry `attempt`, given `random` in `0..<1`.
    public func delay(attempt: Int, random: Double) -> TimeAmount {
        let exponent = min(max(attempt, 0), 32)
        let base = min(Double(initial.nanoseconds) * Double(UInt64(1) << exponent), Double(maximum.nanoseconds))
        let spread = base * jitter * (random - 0.5)
        return .nanoseconds(Int64(max(0, base + spread)))
    }
}
