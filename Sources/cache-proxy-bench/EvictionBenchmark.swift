import ArgumentParser
import CacheProxy
import Foundation

/// `cache-proxy-bench eviction`: hit ratios of the memory tier's eviction policies (LRU, S3-FIFO)
/// on seeded Zipf key traces, plus the time per request. Single-threaded, no I/O.
struct EvictionBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eviction",
        abstract: "Hit ratio of LRU and S3-FIFO on Zipf-distributed key traces.")

    @Option(help: "Distinct keys.")
    var keys: Int = 1_000_000

    @Option(help: "Requests per trace.")
    var requests: Int = 5_000_000

    @Option(help: "Zipf exponents, comma-separated.")
    var alphas: String = "0.8,1.0"

    @Option(help: "Mean entry size in bytes.")
    var entryBytes: Int = 2048

    @Option(help: "Entry sizes are uniform in entry-bytes ± this.")
    var sizeVariation: Int = 512

    @Option(help: "Cache sizes in percent of the key space's bytes, comma-separated.")
    var cachePercents: String = "1,5,10"

    @Option(help: "Seed of the trace and the entry sizes.")
    var seed: UInt64 = 42

    func run() async throws {
        var configuration = EvictionSimulation.Configuration()
        configuration.keys = keys
        configuration.requests = requests
        configuration.alphas = try Self.numbers(alphas, "--alphas")
        configuration.entryBytes = entryBytes
        configuration.sizeVariation = sizeVariation
        configuration.cachePercents = try Self.numbers(cachePercents, "--cache-percents")
        configuration.seed = seed

        print(
            "eviction policies: \(keys) keys, \(requests) requests per trace, entries \(entryBytes) ± \(sizeVariation) B, seed \(seed)")
        print("hit ratio over the whole trace (cold start included); get + set on miss, one thread\n")
        print(Self.table(EvictionSimulation.run(configuration)))
    }

    /// The results as a text table, one row per trace and cache size.
    static func table(_ results: [EvictionSimulation.Result]) -> String {
        var lines = ["alpha  cache   MiB     LRU hit  S3-FIFO hit  LRU ns/req  S3-FIFO ns/req"]
        for row in stride(from: 0, to: results.count - 1, by: 2) {
            let lru = results[row]
            let s3 = results[row + 1]
            lines.append(
                String(
                    format: "%5.2f  %4.1f%%  %6.1f  %7.2f%%  %10.2f%%  %10.0f  %14.0f", lru.alpha, lru.cachePercent,
                    Double(lru.maxBytes) / 1_048_576, lru.hitRatio * 100, s3.hitRatio * 100, lru.nanosecondsPerRequest,
                    s3.nanosecondsPerRequest))
        }
        return lines.joined(separator: "\n")
    }

    private static func numbers(_ list: String, _ option: String) throws -> [Double] {
        try list.split(separator: ",").map {
            guard let value = Double($0.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(option): not a number: \($0)")
            }
            return value
        }
    }
}
