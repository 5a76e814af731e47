import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A private `redis-server` for a benchmark run, on a free loopback port.
struct LocalRedis {
    let port: Int
    let process: Process

    static func start() throws -> LocalRedis {
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<500 {
            if (try? run("/usr/bin/redis-cli", ["-p", "\(port)", "ping"]))?.contains("PONG") == true {
                return LocalRedis(port: port, process: process)
            }
            usleep(10_000)
        }
        throw BenchError("redis-server did not start")
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Runs `redis-benchmark` against this server and returns its requests per second.
    func redisBenchmark(_ arguments: [String]) throws -> Double {
        let output = try Self.run("/usr/bin/redis-benchmark", ["-h", "127.0.0.1", "-p", "\(port)", "-q"] + arguments)
        // "GET: 123456.79 requests per second, p50=0.199 msec" (possibly after \r progress lines)
        guard let line = output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).last(where: { $0.contains("requests per second") }),
            let value = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else {
            throw BenchError("could not read redis-benchmark output: \(output)")
        }
        return value
    }

    static func run(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw BenchError("could not find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
