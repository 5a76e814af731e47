import NIOCore
import Testing
@testable import CacheProxy

@Suite struct RedisBackoffTests {
    let policy = RedisBackoff(initial: .milliseconds(10), maximum: .milliseconds(500), jitter: 0.2)

    @Test func doublesEachAttemptWithoutJitterAtMidpoint() {
        #expect(policy.delay(attempt: 0, random: 0.5) == .milliseconds(10))
        #expect(policy.delay(attempt: 1, random: 0.5) == .milliseconds(20))
        #expect(policy.delay(attempt: 3, random: 0.5) == .milliseconds(80))
    }

    @Test func capsAtMaximum() {
        #expect(policy.delay(attempt: 6, random: 0.5) == .milliseconds(500))
        #expect(policy.delay(attempt: 1000, random: 0.5) == .milliseconds(500))
    }

    @Test func jitterSpreadsWithinBounds() {
        #expect(policy.delay(attempt: 0, random: 0) == .milliseconds(9))
        #expect(policy.delay(attempt: 0, random: 0.999_999).nanoseconds <= TimeAmount.milliseconds(11).nanoseconds)
        #expect(policy.delay(attempt: 0, random: 0.999_999).nanoseconds > TimeAmount.milliseconds(10).nanoseconds)
    }

    @Test func negativeAttemptIsTreatedAsFirst() {
        #expect(policy.delay(attempt: -3, random: 0.5) == .milliseconds(10))
    }
}
