import ArgumentParser
import CacheProxy
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `make bench-coherence`: the cross-instance window of the memory tier. Two instances share a
/// Redis; B serves a key from its memory; A purges it (admin API); how long until B no longer
/// serves it from memory, measured from A's purge answer, while `--load` connections keep B busy
/// with memory hits.
struct CoherenceBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coherence", abstract: "Purge on instance A → instance B stops serving from memory: p50/p99 window, under load.")

    @Option(help: "Purges measured.")
    var samples: Int = 300

    @Option(help: "Connections hammering B with memory hits meanwhile (0: idle).")
    var load: Int = 32

    func run() async throws {
        let redis = try LocalRedis.start()
        defer { redis.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let body = OriginServer.jsonBody(size: 2048)
        let origin = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(OriginHandler(body: body, delay: .zero))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let yaml = """
            listen: 127.0.0.1:0
            upstream: http://127.0.0.1:\(origin.localAddress!.port!)
            redis:
              url: redis://127.0.0.1:\(redis.port)/0
              key_prefix: "coherence:"
              timeout: 1s
            admin:
              listen: 127.0.0.1:0
            routes:
              - path: /w/*
              - path: /hot
            """
        let configuration = try ProxyConfiguration.parse(yaml: yaml, file: "coherence.yaml")
        let a = ProxyServer(configuration: configuration, eventLoopGroup: group)
        let b = ProxyServer(configuration: configuration, eventLoopGroup: group)
        _ = try await a.start()
        let bPort = try await b.start().port!
        try await Task.sleep(for: .milliseconds(300))  // Redis connections and the listeners
        let admin = try await KeepAliveClient.connect(port: a.adminAddress!.port!, group: group)
        let reader = try await KeepAliveClient.connect(port: bPort, group: group)

        // Background load on B: memory hits on one hot key, bounded by `stop`.
        let stop = ManagedFlag()
        var loadTasks: [Task<Int, Error>] = []
        for _ in 0..<load {
            let client = try await KeepAliveClient.connect(port: bPort, group: group)
            loadTasks.append(
                Task {
                    var count = 0
                    while !stop.isSet {
                        _ = try await client.send(.GET, "/hot")
                        count += 1
                    }
                    try await client.close()
                    return count
                })
        }
        let loadStart = DispatchTime.now().uptimeNanoseconds

        var windows: [Double] = []
        var fromSent: [Double] = []
        var failures = 0
        for sample in 0..<samples {
            let path = "/w/\(sample)"
            var warmed = false
            for _ in 0..<10 {
                if try await reader.send(.GET, path).status?.contains("detail=memory") == true {
                    warmed = true
                    break
                }
            }
            guard warmed else {
                failures += 1
                continue
            }
            let sent = DispatchTime.now().uptimeNanoseconds
            let purge = try await admin.send(.POST, "/purge", body: #"{"url": "\#(path)"}"#)
            let answered = DispatchTime.now().uptimeNanoseconds
            guard purge.code == 200 else { throw BenchError("purge answered \(purge.code)") }
            var polls = 0
            while try await reader.send(.GET, path).status?.contains("detail=memory") == true {
                polls += 1
                if polls > 100_000 { throw BenchError("B kept serving \(path) from memory") }
            }
            let gone = DispatchTime.now().uptimeNanoseconds
            windows.append(Double(gone - answered) / 1e6)
            fromSent.append(Double(gone - sent) / 1e6)
        }
        stop.set()
        var loadRequests = 0
        for task in loadTasks { loadRequests += try await task.value }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9
        windows.sort()
        fromSent.sort()
        let p = StampedeBenchmark.percentile
        print("memory-tier coherence: purge on A (admin API, by URL) → B no longer serves the entry from memory")
        print(String(format: "load on B: %d connections, %.0f memory hits/s during the run", load, Double(loadRequests) / seconds))
        print(
            String(
                format: "window from A's purge answer: p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d samples, %d not warmed)",
                p(windows, 0.5), p(windows, 0.99), windows.last ?? .nan, windows.count, failures))
        print(
            String(
                format: "window from the purge request: p50 %.2f ms  p99 %.2f ms  max %.2f ms", p(fromSent, 0.5), p(fromSent, 0.99),
                fromSent.last ?? .nan))
        print("(each measurement includes one request to B that still saw the entry, or none: the resolution is one B round trip)")
        try await admin.close()
        try await reader.close()
        await a.shutdown(gracePeriod: .seconds(1))
        await b.shutdown(gracePeriod: .seconds(1))
        try await origin.close()
        try await group.shutdownGracefully()
    }
}

/// A stop flag shared with load tasks.
final class ManagedFlag: Sendable {
    private let value = NIOLockedValueBox(false)
    var isSet: Bool { value.withLockedValue { $0 } }
    func set() { value.withLockedValue { $0 = true } }
}

/// One keep-alive HTTP/1.1 connection, one request at a time; answers carry the status code and
/// the `Cache-Status` header.
final class KeepAliveClient: Sendable {
    struct Answer: Sendable {
        var code: Int
        var status: String?
    }

    private let channel: Channel
    private let collector: NIOLoopBound<AnswerCollector>

    private init(channel: Channel, collector: NIOLoopBound<AnswerCollector>) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(port: Int, group: EventLoopGroup) async throws -> KeepAliveClient {
        let loop = group.next()
        let holder = NIOLockedValueBox<NIOLoopBound<AnswerCollector>?>(nil)
        let channel = try await ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let collector = AnswerCollector()
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                    holder.withLockedValue { $0 = NIOLoopBound(collector, eventLoop: channel.eventLoop) }
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return KeepAliveClient(channel: channel, collector: holder.withLockedValue { $0! })
    }

    func send(_ method: HTTPMethod, _ uri: String, body: String? = nil) async throws -> Answer {
        let collector = self.collector
        let channel = self.channel
        return try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Answer> in
            let promise = channel.eventLoop.makePromise(of: Answer.self)
            collector.value.pending = promise
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
            head.headers.add(name: "host", value: "bench")
            if let body {
                head.headers.add(name: "content-type", value: "application/json")
                head.headers.add(name: "content-length", value: "\(body.utf8.count)")
            }
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            return promise.futureResult
        }.get()
    }

    func close() async throws {
        try await channel.close()
    }
}

private final class AnswerCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    var pending: EventLoopPromise<KeepAliveClient.Answer>?
    private var answer: KeepAliveClient.Answer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): answer = .init(code: Int(head.status.code), status: head.headers.first(name: "cache-status"))
        case .body: break
        case .end:
            if let answer { pending?.succeed(answer) }
            pending = nil
            answer = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending?.fail(BenchError("closed"))
        pending = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        pending?.fail(error)
        pending = nil
        context.close(promise: nil)
    }
}
