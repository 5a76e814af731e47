import Foundation
#if canImport(Glibc)
    import Glibc
#endif
@testable import CacheProxy

/// A real `redis-server` on a free loopback port, started by the test and killed by it.
///
/// Stopped with SIGKILL: a server started from the test process can inherit a blocked SIGTERM.
final class RedisServer: @unchecked Sendable {
    // @unchecked: `process` is set in `init` and touched again only by `stop()`, which the
    // owning test calls; nothing else shares it.
    let port: Int
    let password: String?
    private let process: Process

    private init(port: Int, password: String?, process: Process) {
        self.port = port
        self.password = password
        self.process = process
    }

    /// The URL a client uses to reach this server (with its password, if any).
    func url(database: Int = 0, password: String? = nil) -> RedisURL {
        RedisURL(host: "127.0.0.1", port: port, password: password ?? self.password, database: database)
    }

    /// Starts `redis-server` and waits until it accepts connections.
    /// - Parameter port: the port to use; default a free one.
    static func start(password: String? = nil, port: Int? = nil) async throws -> RedisServer {
        let port = try port ?? freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable("redis-server"))
        var arguments = [
            "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--enable-debug-command", "local", "--dir", NSTemporaryDirectory(),
            "--loglevel", "warning",
        ]
        if let password { arguments += ["--requirepass", password] }
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let server = RedisServer(port: port, password: password, process: process)
        let deadline = Date().addingTimeInterval(10)
        while !canConnect(port: port) {
            guard process.isRunning, Date() < deadline else {
                server.stop()
                throw TestFailure("redis-server did not start on port \(port)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return server
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// Runs `body` with a fresh server and always kills it afterwards.
func withRedisServer<T>(password: String? = nil, _ body: (RedisServer) async throws -> T) async throws -> T {
    let server = try await RedisServer.start(password: password)
    defer { server.stop() }
    return try await body(server)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Finds an executable on PATH or in the usual Debian places.
func executable(_ name: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for directory in path.split(separator: ":") + ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw TestFailure("\(name) not found; install it (make test does)")
}

/// A loopback port that was free a moment ago (bound to port 0, then closed).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on the loopback port.
func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}
