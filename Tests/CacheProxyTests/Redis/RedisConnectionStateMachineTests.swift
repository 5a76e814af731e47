import NIOCore
import Testing
@testable import CacheProxy

@Suite struct RedisConnectionStateMachineTests {
    let backoff = RedisBackoff(initial: .milliseconds(10), maximum: .milliseconds(100), jitter: 0)

    @Test func firstCommandConnectsLaterOnesQueue() {
        var machine = RedisConnectionStateMachine(backoff: backoff)
        #expect(machine.commandRequested() == .connectAndEnqueue)
        #expect(machine.commandRequested() == .enqueue)
        #expect(machine.connectionReady() == .none)
        #expect(machine.commandRequested() == .enqueue)
    }

    @Test func failedAttemptsBackOffAndFailFast() {
        var machine = RedisConnectionStateMachine(backoff: backoff)
        #expect(machine.start() == .connect)
        let refused = RedisClientError.connectFailed.withDetail("refused")
        #expect(machine.connectionClosed(error: refused, random: 0.5) == .scheduleReconnect(after: .milliseconds(10)))
        #expect(machine.commandRequested() == .fail(.connectFailed))
        #expect(machine.reconnectTimerFired() == .connect)
        #expect(machine.commandRequested() == .enqueue)
        #expect(machine.connectionClosed(error: refused, random: 0.5) == .scheduleReconnect(after: .milliseconds(20)))
        #expect(machine.reconnectTimerFired() == .connect)
        #expect(machine.connectionClosed(error: refused, random: 0.5) == .scheduleReconnect(after: .milliseconds(40)))
        #expect(machine.reconnectTimerFired() == .connect)
        #expect(machine.connectionReady() == .none)
        // Once a connection has served, losing it retries at once and the backoff starts over.
        #expect(machine.connectionClosed(error: .connectionClosed, random: 0.5, servedReplies: true) == .connect)
        #expect(machine.connectionClosed(error: refused, random: 0.5) == .scheduleReconnect(after: .milliseconds(10)))
    }

    @Test func aServerThatAcceptsAndClosesIsRetriedWithBackoff() {
        var machine = RedisConnectionStateMachine(backoff: backoff)
        #expect(machine.start() == .connect)
        var delays: [TimeAmount] = []
        for _ in 0..<4 {
            #expect(machine.connectionReady() == .none)
            guard case .scheduleReconnect(let delay) = machine.connectionClosed(error: .connectionClosed, random: 0.5) else {
                Issue.record("a connection that served nothing was replaced at once")
                return
            }
            delays.append(delay)
            #expect(machine.reconnectTimerFired() == .connect)
        }
        #expect(delays == [.milliseconds(10), .milliseconds(20), .milliseconds(40), .milliseconds(80)])
    }

    @Test func waitingReportsTheLastError() {
        var machine = RedisConnectionStateMachine(backoff: backoff)
        _ = machine.start()
        _ = machine.connectionClosed(error: RedisClientError.authenticationFailed.withDetail("WRONGPASS"), random: 0.5)
        guard case .fail(let error) = machine.commandRequested() else {
            Issue.record("expected a fast failure")
            return
        }
        #expect(error == .authenticationFailed)
        #expect(error.detail == "WRONGPASS")
    }

    @Test func shutdownFailsEverythingAfter() {
        var machine = RedisConnectionStateMachine(backoff: backoff)
        _ = machine.start()
        _ = machine.connectionReady()
        #expect(machine.shutdown() == .closeConnection)
        #expect(machine.commandRequested() == .fail(.clientShutdown))
        #expect(machine.connectionClosed(error: .connectionClosed, random: 0.5) == .none)
        #expect(machine.reconnectTimerFired() == .none)
        #expect(machine.shutdown() == .none)
    }

    @Test func shutdownWhileWaitingCancelsReconnect() {
        var machine = RedisConnectionStateMachine(backoff: backoff)
        _ = machine.start()
        _ = machine.connectionClosed(error: .connectFailed, random: 0.5)
        #expect(machine.shutdown() == .none)
        #expect(machine.reconnectTimerFired() == .none)
    }
}
