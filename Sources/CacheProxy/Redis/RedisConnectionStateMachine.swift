import NIOCore

/// The life cycle of one Redis connection: connect, hand-shake, serve, lose it, back off,
/// reconnect. Pure: it does no I/O and reads no clock; ``RedisConnection`` performs its actions.
///
/// ```
/// idle ──command──▶ connecting ──ready──▶ connected ──closed after serving──▶ connecting (at once)
///                      │  ▲                    │
///                failed│  │backoff elapsed     │closed before serving a reply
///                      ▼  │                    ▼
///                 waitingToReconnect (commands fail fast with the last error)
/// ```
///
/// A connection that closes before it answered any command counts as a failed attempt, so a
/// server that accepts and then closes at once is retried with backoff, not in a tight loop.
struct RedisConnectionStateMachine {
    enum State {
        case idle
        case connecting(attempt: Int)
        /// Up; `attempt` is the attempt that opened it (0 once it has served a reply).
        case connected(attempt: Int)
        case waitingToReconnect(attempt: Int, lastError: RedisClientError)
        case shutDown
    }

    /// What to do with a command the caller wants to send.
    enum CommandAction: Equatable {
        /// Hand it to the current connection (ready or still connecting: it queues there).
        case enqueue
        /// Start connecting, then hand it to the new connection.
        case connectAndEnqueue
        /// Fail it now.
        case fail(RedisClientError)
    }

    /// What to do after a connection event.
    enum Action: Equatable {
        case none
        case connect
        case scheduleReconnect(after: TimeAmount)
        case closeConnection
    }

    private(set) var state: State = .idle
    let backoff: RedisBackoff

    init(backoff: RedisBackoff) {
        self.backoff = backoff
    }

    /// Starts connecting ahead of the first command (used at start-up).
    mutating func start() -> Action {
        guard case .idle = state else { return .none }
        state = .connecting(attempt: 0)
        return .connect
    }

    mutating func commandRequested() -> CommandAction {
        switch state {
        case .idle:
            state = .connecting(attempt: 0)
            return .connectAndEnqueue
        case .connecting, .connected:
            return .enqueue
        case .waitingToReconnect(_, let lastError):
            return .fail(lastError)
        case .shutDown:
            return .fail(.clientShutdown)
        }
    }

    /// The connection is up and its hand-shake (AUTH, SELECT) succeeded.
    mutating func connectionReady() -> Action {
        guard case .connecting(let attempt) = state else { return .none }
        state = .connected(attempt: attempt)
        return .none
    }

    /// A connect or hand-shake attempt failed, or a connection closed. A connection that served
    /// at least one reply (`servedReplies`) is replaced at once; anything else backs off.
    mutating func connectionClosed(error: RedisClientError, random: Double, servedReplies: Bool = false) -> Action {
        switch state {
        case .connected where servedReplies:
            state = .connecting(attempt: 0)
            return .connect
        case .connected(let attempt), .connecting(let attempt):
            state = .waitingToReconnect(attempt: attempt + 1, lastError: error)
            return .scheduleReconnect(after: backoff.delay(attempt: attempt, random: random))
        case .idle, .waitingToReconnect, .shutDown:
            return .none
        }
    }

    mutating func reconnectTimerFired() -> Action {
        guard case .waitingToReconnect(let attempt, _) = state else { return .none }
        state = .connecting(attempt: attempt)
        return .connect
    }

    mutating func shutdown() -> Action {
        switch state {
        case .shutDown:
            return .none
        case .connected, .connecting:
            state = .shutDown
            return .closeConnection
        case .idle, .waitingToReconnect:
            state = .shutDown
            return .none
        }
    }
}
