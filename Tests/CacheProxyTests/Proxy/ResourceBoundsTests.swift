import Foundation
import NIOCore
import Testing
@testable import CacheProxy

#if canImport(Glibc)
    import Glibc
#endif

/// The `cache-proxy` binary in its own process, so its memory can be measured.
final class ProxyProcess: @unchecked Sendable {
    // @unchecked: `process` is set in `start` and only read afterwards, by the owning test.
    let port: Int
    private let process: Process
    private let configPath: String

    private init(port: Int, process: Process, configPath: String) {
        self.port = port
        self.process = process
        self.configPath = configPath
    }

    static func start(yaml: (Int) -> String) async throws -> ProxyProcess {
        let binary = try #require(CheckCommandTests.binary, "the cache-proxy binary is built next to the tests")
        let port = try freeLoopbackPort()
        let path = NSTemporaryDirectory() + "proxy-\(UUID().uuidString).yaml"
        try yaml(port).write(toFile: path, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--config", path, "--threads", "2"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let proxy = ProxyProcess(port: port, process: process, configPath: path)
        let deadline = Date().addingTimeInterval(10)
        while !canConnect(port: port) {
            guard process.isRunning, Date() < deadline else {
                proxy.stop()
                throw TestFailure("cache-proxy did not start")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return proxy
    }

    /// Resident memory in KiB (`VmRSS` of /proc/PID/status).
    var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: configPath)
    }
}

/// Memory and connection limits, measured against the real binary or the real server.
@Suite(.serialized) struct ResourceBoundsTests {
    @Test func aClientPipeliningHitsWithoutReadingKeepsMemoryBounded() async throws {
        let redis = try await RedisServer.start()
        let origin = try await TestOrigin.start(group: ProxyHarness.group)
        let proxy = try await ProxyProcess.start { port in
            """
            listen: 127.0.0.1:\(port)
            upstream: http://127.0.0.1:\(origin.port)
            redis:
              url: redis://127.0.0.1:\(redis.port)/0
              timeout: 2s
            routes:
              - path: /large/*
                max_body_bytes: 200000
            """
        }
        defer {
            proxy.stop()
            redis.stop()
        }
        let client = TestHTTPClient(port: proxy.port, group: ProxyHarness.group)
        #expect(try await client.get("/large/102400").xCache == "MISS")
        #expect(try await client.get("/large/102400").xCache == "HIT")
        for _ in 0..<20 { _ = try await client.get("/large/102400") }  // warm the allocator
        let before = proxy.residentKiB

        // 1,000 pipelined HITs for 100 KB (100 MB of answers) from a client that never reads.
        let fd = try connectSocket(port: proxy.port, receiveBuffer: 4096)
        defer { close(fd) }
        let requests = Array(String(repeating: "GET /large/102400 HTTP/1.1\r\nHost: x\r\n\r\n", count: 1000).utf8)
        var flags = fcntl(fd, F_GETFL)
        flags |= O_NONBLOCK
        _ = fcntl(fd, F_SETFL, flags)
        var sent = 0
        let sendDeadline = Date().addingTimeInterval(5)
        while sent < requests.count, Date() < sendDeadline {
            let n = requests[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { sent += n } else { try await Task.sleep(for: .milliseconds(10)) }
        }
        var peak = 0
        for _ in 0..<20 {
            try await Task.sleep(for: .milliseconds(100))
            peak = max(peak, proxy.residentKiB)
        }
        let growth = peak - before
        print("pipelined HITs without reading: RSS \(before) KiB before, peak \(peak) KiB (+\(growth) KiB), \(sent) request bytes accepted")
        // Unbounded, the proxy would hold up to 1,000 × 100 KB ≈ 100 MB of answers.
        #expect(growth < 16 * 1024, "RSS grew by \(growth) KiB")
        // Others are still served.
        #expect(try await client.get("/large/102400").xCache == "HIT")
        await origin.stop()
    }

    @Test func slowlorisConnectionsDoNotDelayANormalRequestAndAreClosed() async throws {
        try await withProxy(routes: "  - path: /c", extra: "client:\n  header_timeout: 1500ms") { h throws in
            // Warm up first: the first request also waits for the proxy's Redis connection.
            #expect(try await h.client.get("/c").status == .ok)
            // 100 connections that send a head one byte every 100 ms.
            var sockets: [Int32] = []
            defer { sockets.forEach { close($0) } }
            for _ in 0..<100 {
                let fd = try connectSocket(port: h.client.port)
                var flags = fcntl(fd, F_GETFL)
                flags |= O_NONBLOCK
                _ = fcntl(fd, F_SETFL, flags)
                sockets.append(fd)
            }
            let head = Array("GET /c HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 100)
            var latencies: [Double] = []
            for index in 0..<12 {
                for fd in sockets {
                    _ = [head[index]].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }
                }
                let start = Date()
                let response = try await h.client.get("/c")
                latencies.append(Date().timeIntervalSince(start))
                #expect(response.status == .ok)
                try await Task.sleep(for: .milliseconds(100))
            }
            print("normal requests during 100 slowloris connections: max \(Int((latencies.max() ?? 0) * 1000)) ms")
            #expect(latencies.max()! < 1.0)
            // Past the header timeout each got a 408 and was closed.
            try await Task.sleep(for: .milliseconds(800))
            var refused = 0
            var buffer = [UInt8](repeating: 0, count: 4096)
            for fd in sockets {
                var received = [UInt8]()
                let deadline = Date().addingTimeInterval(2)
                while Date() < deadline {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n > 0 {
                        received += buffer[0..<n]
                    } else if n == 0 {
                        break
                    } else {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                }
                if String(decoding: received, as: UTF8.self).hasPrefix("HTTP/1.1 408") { refused += 1 }
            }
            #expect(refused == 100)
        }
    }
}
