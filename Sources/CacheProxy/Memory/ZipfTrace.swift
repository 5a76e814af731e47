import Foundation

/// A Zipf-distributed request trace: key `k` (0-based rank) is requested with probability
/// proportional to 1 / (k + 1)^alpha.
public enum ZipfTrace {
    /// `requests` key numbers in `0..<keys`, drawn with exponent `alpha` from `generator`.
    /// Sampling inverts a precomputed CDF by binary search: O(keys) memory, O(log keys) per request.
    public static func generate(
        keys: Int, requests: Int, alpha: Double, using generator: inout some RandomNumberGenerator
    ) -> [Int32] {
        precondition(keys > 0 && keys <= Int(Int32.max), "keys must be in 1...Int32.max")
        var cumulative = [Double](repeating: 0, count: keys)
        var sum = 0.0
        for rank in 0..<keys {
            sum += 1 / pow(Double(rank + 1), alpha)
            cumulative[rank] = sum
        }
        var trace = [Int32]()
        trace.reserveCapacity(requests)
        for _ in 0..<requests {
            let target = Double.random(in: 0..<sum, using: &generator)
            var low = 0
            var high = keys - 1
            while low < high {
                let middle = (low + high) / 2
                if cumulative[middle] <= target { low = middle + 1 } else { high = middle }
            }
            trace.append(Int32(low))
        }
        return trace
    }
}
