import ArgumentParser
import CacheProxy
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `make bench-stampede`: how many origin requests 1,000 concurrent requests for one cold key
/// cause, with one proxy instance and with three sharing a Redis, with and without coalescing.
/// The origin takes `--origin-ms` per answer (a database query), so the requests pile up.
struct StampedeBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stampede", abstract: "Origin requests per 1,000 concurrent cold requests, 1 and 3 instances.")

    @Option(help: "Concurrent requests per round.")
    var requests: Int = 1000

    @Option(help: "Rounds per scenario (each on a new cold key).")
    var rounds: Int = 3

    @Option(help: "Milliseconds the origin takes per answer.")
    var originMs: Int = 100

    func run() async throws {
        let redis = try LocalRedis.start()
        defer { redis.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let counter = NIOLockedValueBox(0)
        let body = OriginServer.jsonBody(size: 2048)
        let delay = TimeAmount.milliseconds(Int64(originMs))
        let origin = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(OriginHandler(body: body, delay: delay, counter: counter))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let originPort = origin.localAddress!.port!

        print("\(requests) concurrent GETs of one cold key per round, origin \(originMs) ms per answer, \(rounds) rounds per row")
        print("instances  coalescing  origin requests (mean, max)   p50 ms   p99 ms   errors")
        for (instances, coalesce) in [(1, false), (1, true), (3, false), (3, true)] {
            let yaml = """
                listen: 127.0.0.1:0
                upstream: http://127.0.0.1:\(originPort)
                upstream_max_waiting: 4096
                redis:
                  url: redis://127.0.0.1:\(redis.port)/0
                  key_prefix: "stampede-\(instances)-\(coalesce):"
                  timeout: 1s
                defaults:
                  coalesce_timeout: \(coalesce ? "5s" : "0s")
                routes:
                  - path: /cold/*
                """
            let configuration = try ProxyConfiguration.parse(yaml: yaml, file: "stampede.yaml")
            var servers: [ProxyServer] = []
            var ports: [Int] = []
            for _ in 0..<instances {
                let server = ProxyServer(configuration: configuration, eventLoopGroup: group)
                ports.append(try await server.start().port!)
                servers.append(server)
            }
            try await Task.sleep(for: .milliseconds(300))  // Redis connections and the subscriber
            var originCounts: [Int] = []
            var latencies: [Double] = []
            var errors = 0
            for round in 0..<rounds {
                let before = counter.withLockedValue { $0 }
                let path = "/cold/\(instances)-\(coalesce)-\(round)"
                let results = await withTaskGroup(of: Double?.self) { tasks in
                    for index in 0..<requests {
                        let port = ports[index % ports.count]
                        tasks.addTask { await Self.get(path, port: port, group: group) }
                    }
                    var results: [Double?] = []
                    for await result in tasks { results.append(result) }
                    return results
                }
                originCounts.append(counter.withLockedValue { $0 } - before)
                latencies += results.compactMap { $0 }
                errors += results.filter { $0 == nil }.count
            }
            latencies.sort()
            let mean = Double(originCounts.reduce(0, +)) / Double(originCounts.count)
            print(
                String(
                    format: "%9d  %10@  %15.1f, %-10d  %7.1f  %7.1f   %d", instances, coalesce ? "on" : "off", mean,
                    originCounts.max() ?? 0,
                    Self.percentile(latencies, 0.5), Self.percentile(latencies, 0.99), errors))
            for server in servers { await server.shutdown(gracePeriod: .seconds(1)) }
        }
        try await origin.close()
        try await group.shutdownGracefully()
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }

    /// One GET on its own connection; its latency in ms, or nil on any failure (non-200 included).
    static func get(_ path: String, port: Int, group: EventLoopGroup) async -> Double? {
        let started = DispatchTime.now().uptimeNanoseconds
        let loop = group.next()
        let promise = loop.makePromise(of: HTTPResponseStatus.self)
        do {
            let channel = try await ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(StatusCollector(promise: promise))
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
            head.headers.add(name: "host", value: "bench")
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            let timeout = loop.scheduleTask(in: .seconds(30)) { promise.fail(BenchError("timed out")) }
            defer {
                timeout.cancel()
                channel.close(promise: nil)
            }
            let status = try await promise.futureResult.get()
            guard status == .ok else { return nil }
            return Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
        } catch {
            promise.fail(error)
            return nil
        }
    }
}

private final class StatusCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<HTTPResponseStatus>
    var status: HTTPResponseStatus?

    init(promise: EventLoopPromise<HTTPResponseStatus>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = head.status
        case .body: break
        case .end: if let status { promise.succeed(status) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) { promise.fail(BenchError("closed")) }
    func errorCaught(context: ChannelHandlerContext, error: Error) { promise.fail(error) }
}
