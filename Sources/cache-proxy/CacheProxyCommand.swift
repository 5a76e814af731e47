import ArgumentParser
import CacheProxy
import Foundation
import Logging
import NIOCore
import NIOPosix

/// `cache-proxy [serve] --config FILE` and `cache-proxy check --config FILE`.
@main
struct CacheProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache-proxy",
        abstract: "A caching reverse proxy for HTTP APIs, with Redis as the cache.",
        subcommands: [Serve.self, Check.self],
        defaultSubcommand: Serve.self)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve requests (the default command).")

    @Option(name: .long, help: "The YAML config file.")
    var config: String

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical. At debug, one line per request.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Event loop threads. Default: one per core.")
    var threads: Int = System.coreCount

    func validate() throws {
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() async throws {
        let configuration: ProxyConfiguration
        do {
            configuration = try ProxyConfiguration.load(path: config)
        } catch {
            FileHandle.standardError.write(Data("cache-proxy: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let level = Logger.Level(rawValue: logLevel.lowercased())!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "cache-proxy")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let server = ProxyServer(configuration: configuration, eventLoopGroup: group, logger: logger)
        do {
            try await server.start()
        } catch {
            logger.critical("cannot listen on \(configuration.listen): \(error)")
            throw ExitCode(1)
        }

        let signals = [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                logger.info("signal \(signalNumber): shutting down")
                Task { await server.shutdown() }
            }
            source.resume()
            return source
        }
        try await server.waitUntilClosed()
        // waitUntilClosed returns when the listener closes; let shutdown finish draining.
        await server.shutdown(gracePeriod: .seconds(10))
        signals.forEach { $0.cancel() }
        try await group.shutdownGracefully()
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a config file: prints OK, or what is wrong and exits 1.")

    @Option(name: .long, help: "The YAML config file.")
    var config: String

    func run() throws {
        do {
            _ = try ProxyConfiguration.load(path: config)
            print("OK")
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
